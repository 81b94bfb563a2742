#!/usr/bin/env bash
# The Hessian of resnet56 vs plain56 at theta* (issue #31): the SLQ spectral density and
# the top eigenvalue and trace per stage, on the shipped checkpoints and the first 128
# embedded training images. Resumable: a result already written is kept.
#
#   scripts/spectrum56.sh                 (SAMPLES=, PROBES=, DEPTH=, ITERS=, TRACE= override)
#
# Cost on 2 shared CPU cores: one 56-layer Hessian-vector product on 128 images is a few
# seconds, so the density (PROBES x DEPTH products) and each stage (ITERS + TRACE products)
# take minutes to tens of minutes per network; on a GPU, seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SAMPLES=${SAMPLES:-128}
PROBES=${PROBES:-4}
DEPTH=${DEPTH:-30}
ITERS=${ITERS:-30}
TRACE=${TRACE:-8}
out=docs/results
times=runs/spectrum56_times.txt
mkdir -p runs
timed() {
  local start=$SECONDS
  "$@"
  echo "$(date -u +%FT%TZ) $(( SECONDS - start )) s on $(nproc) CPU cores: $*" >> "$times"
}
prev=()
for net in resnet56 plain56; do
  f="$out/${net}_density.json"
  [ -e "$f" ] || timed $PY -m landscape.hessian --ckpt "pretrained:$net" --samples "$SAMPLES" \
      --density --probes "$PROBES" --depth "$DEPTH" --quiet --out "$f" \
      --figure "$out/density_56.png" --overwrite ${prev[@]+"${prev[@]}"}
  prev=(--compare "$f")
done
prev=()
for net in resnet56 plain56; do
  f="$out/${net}_stages.json"
  [ -e "$f" ] || timed $PY -m landscape.hessian --ckpt "pretrained:$net" --samples "$SAMPLES" \
      --per-block stage --iters "$ITERS" --tol 1e-3 --trace-samples "$TRACE" --quiet \
      --out "$f" --figure "$out/stages_56.png" --overwrite ${prev[@]+"${prev[@]}"}
  prev=(--compare "$f")
done
