#!/usr/bin/env bash
# Every GPU check in one run (under 8 minutes on one modern GPU):
#   1. the tests marked `gpu` (batched == pointwise, precisions, OOM back-off, CUDA compute);
#   2. the surface benchmark on resnet56, 21x21 grid, 5,000 samples (the embedded training subset), in fp32, tf32 and bf16;
#   3. a task surface (loss_fn: a small LM on dict batches, a regression MLP), vmap against pointwise;
#   4. adaptive refinement and mode connectivity on the GPU (their test files, CPU-sized, on cuda).
# Usage: benchmarks/gpu_check.sh [OUTDIR]     (figures also written as JSON to OUTDIR)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_results}}
mkdir -p "$out"
PY=${PYTHON:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "== gpu tests"
$PY -m pytest -m gpu -p no:cacheprovider -q tests/test_gpu.py 2>&1 | tail -15
for precision in fp32 tf32 bf16; do
  echo "== benchmark resnet56 21x21 5000 samples $precision"
  # The naive baseline is timed on 9 points and scaled: it is the slow one.
  $PY benchmarks/bench_surface.py --model resnet56 --grid 21 --samples 5000 --device cuda \
    --precision "$precision" --baseline-points 9 --json "$out/bench_resnet56_$precision.json"
done
echo "== task benchmark (vmap vs pointwise)"
$PY benchmarks/bench_task.py --device cuda --points 7 --samples 512 2>&1 | tail -12
echo "== adaptive refinement and mode connectivity (tests, CUDA visible)"
$PY -m pytest -p no:cacheprovider -q -m "not child" tests/test_refine.py tests/test_connect.py 2>&1 | tail -5
