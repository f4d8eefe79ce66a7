#!/usr/bin/env bash
# Every GPU measurement and CUDA test of the workflow in one run of a few minutes, for a machine lent for a
# short while (issue 17's GPU figures: stacks of 8/16/32 runs against one run, their share of the bandwidth
# floor and what a stacked step spends its time on; compiled losses; the CUDA equality tests).
#
#   bash benchmarks/gpu_check.sh [SPLIT_DIR] [OUT_DIR]
#
# SPLIT_DIR: the Gowalla split (default results/data/gowalla/split/seed123; made here with
#   snakemake --cores 2 --config mirror=../shared/data -- results/data/gowalla/split/seed123/split.json).
# OUT_DIR: where the logs and CSV files go (default $OUT where set, else results/benchmarks/gpu).
# It needs no installed specrec: Python, PyTorch with CUDA, pandas, pyarrow, scipy, tqdm, PyYAML and pytest.
# Each step has its own time limit, the most important first, so that a cut-short run still returns numbers.
set -uo pipefail
split=${1:-results/data/gowalla/split/seed123}
out=${2:-${OUT:-results/benchmarks/gpu}}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD/tests:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TQDM_DISABLE=1
python=${PYTHON:-python3}
device=${DEVICE:-cuda}  # DEVICE=cpu tries the script out where there is no GPU

step() {  # step NAME SECONDS COMMAND...: run it with a time limit, its output to the screen and NAME.log
    local name=$1 seconds=$2
    shift 2
    echo "== $name ($(date -u +%H:%M:%S), at most ${seconds}s): $*"
    timeout "$seconds" "$@" 2>&1 | tee "$out/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]}"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; } | tee "$out/device.log"
$python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())" |
    tee -a "$out/device.log"
[ -f "$split/train.parquet" ] || { echo "no split at $split: make it first (see the top of this script)"; exit 2; }

step stacks 210 $python benchmarks/stack_throughput.py "$split" --device "$device" --sizes 1 8 16 32 --profile 16 \
    --csv "$out/stacks.csv"
step cuda_tests 150 $python -m pytest -q -rs -p no:cacheprovider -k cuda \
    tests/test_groups.py tests/test_train.py tests/test_lightgcn.py tests/test_evaluate.py
step compiled_losses 150 $python benchmarks/compiled_losses.py "$split" --device "$device" --runs mf:bpr mf:ssm \
    lightgcn:bpr --epochs 2 --csv "$out/compiled_losses.csv"
