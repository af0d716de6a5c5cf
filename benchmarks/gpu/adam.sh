#!/bin/bash
# On a GPU machine: DLPFC 151673 prepared by the pipeline's steps, then trained 600 epochs (seed 0) on the GPU
# with stcore.train.Adam and with torch.optim.Adam, each clustered; prints both ARIs and whether the outputs
# are equal.
#
#   WHEELS=<wheels folder> bash benchmarks/gpu/adam.sh <DLPFC 151673 .h5ad>
set -u; export PYTHONUNBUFFERED=1
PY=$(ls /opt/torch/.venv/bin/python3 2>/dev/null || command -v python3)
[ -n "${WHEELS:-}" ] && { $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir $WHEELS/*.whl || exit 1; }
export PYTHONPATH=$PWD
W=/tmp/adam_gpu; mkdir -p $W
$PY benchmarks/steps.py preprocess --slide $1 --work $W --seed 0 | grep RESULT
$PY benchmarks/steps.py graph --work $W --seed 0 | grep RESULT
$PY benchmarks/gpu/adam.py $W 2>&1 | grep -v Warning
