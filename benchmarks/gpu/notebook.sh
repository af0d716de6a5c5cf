#!/bin/bash
# The notebook API's GPU path on a GPU machine, in one run: the tests whose GPU branches run only
# where torch sees a GPU (the device checks, training, the notebook API, repeatability), then
# benchmarks/gpu/notebook.py on a labelled slide (stcore.tl.domains with the defaults, so
# train.device auto picks the GPU; cuda:0 twice; the CPU on 2 threads for the ratio).
#
#   bash benchmarks/gpu/notebook.sh <slide .h5ad> <out folder> [wheels folder]
#
# The wheels folder holds what the machine's Python lacks of requirements.txt (as series.sh).
set -u
export PYTHONUNBUFFERED=1
SLIDE=$1; OUTDIR=$2; WHEELS=${3:-}
mkdir -p "$OUTDIR"
PY=$(ls /opt/torch/.venv/bin/python3 2>/dev/null || command -v python3)
if [ -n "$WHEELS" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
nvidia-smi -L || true
$PY -c "import torch, numpy, pandas, anndata, scanpy, sklearn; print('torch', torch.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'anndata', anndata.__version__, 'scanpy', scanpy.__version__, 'sklearn', sklearn.__version__)" || exit 1
echo "== tests with a GPU present"
timeout 300 $PY -m pytest -q -p no:cacheprovider tests/test_train.py tests/test_api_notebook.py \
    tests/test_model.py tests/test_reproducible.py 2>&1 | tee "$OUTDIR/tests.log" | tail -40
echo "== notebook API on $SLIDE"
timeout 240 $PY benchmarks/gpu/notebook.py "$SLIDE" "$OUTDIR/notebook.jsonl"
