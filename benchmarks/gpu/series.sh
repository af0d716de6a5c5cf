#!/bin/bash
# The scale series on a GPU machine, in one run: DLPFC 151673 through the pipeline's steps (training 600
# epochs on the GPU, and on 2 CPU threads of the same machine for a same-machine ratio), then simulated
# slides of 200,000 and 1,000,000 scattered spots at a Visium HD-like depth (200 counts a spot; 10 epochs on
# the 3,000 genes and on 100 input PCs).
#
#   bash benchmarks/gpu/series.sh <DLPFC 151673 .h5ad> <out folder> [wheels folder]
#
# The wheels folder holds what the machine's Python lacks of requirements.txt (anndata, scanpy, ...); they
# are installed with --no-deps over its own torch.  The 1,000,000-spot slide is drawn as 8 tiles in
# parallel processes (benchmarks/scale.py --tiles), which only shortens its start: the spots' density and
# depth are one slide's.  Every step prints one JSON line.  DEVICE, SIZES and DLPFC_EPOCHS (defaults cuda,
# "200000 1000000", 600) exist to try the script on a CPU machine before spending GPU time.
set -u
export PYTHONUNBUFFERED=1 GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}
SLIDE=$1; OUTDIR=$2; WHEELS=${3:-}
DEVICE=${DEVICE:-cuda}; SIZES=${SIZES:-200000 1000000}; DLPFC_EPOCHS=${DLPFC_EPOCHS:-600}
mkdir -p "$OUTDIR"
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
el "== machine"; lscpu | grep -E "Model name|^CPU\(s\)"; nvidia-smi -L || true
PY=$(ls /opt/torch/.venv/bin/python3 2>/dev/null || command -v python3)
if [ -n "$WHEELS" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$WHEELS"/*.whl || exit 1
fi
export PYTHONPATH=$PWD
$PY -c "import torch, numpy, scipy, pandas, anndata, scanpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'pandas', pandas.__version__, 'anndata', anndata.__version__, 'scanpy', scanpy.__version__)" || exit 1

el "== DLPFC 151673: preprocess, graph, train (cuda; cpu 2 threads), cluster"
W=/tmp/gpu_series/dlpfc
rm -rf "$W"; mkdir -p "$W"
step() { $PY benchmarks/steps.py "$@" | grep '^RESULT ' | sed 's/^RESULT //' | tee -a "$OUTDIR/dlpfc.jsonl"; }
step preprocess --slide "$SLIDE" --work "$W" --seed 0
step graph --work "$W" --seed 0
for dev in $DEVICE cpu; do
    step train --work "$W" --seed 0 --epochs $DLPFC_EPOCHS --threads 2 --device $dev
    step cluster --work "$W" --seed 0
done

el "== simulated slides of $SIZES spots, depth 200 ($DEVICE, 10 epochs)"
timeout 420 $PY benchmarks/scale.py --sizes $SIZES --depth 200 --tiles 8 --epochs 10 --input-pcs 100 \
    --device $DEVICE --timeout 300 --out "$OUTDIR" 2>&1 | tail -n 20
el "== done"
