#!/usr/bin/env bash
# The 56-layer comparison at Li et al.'s resolution (issue #18), on the shipped checkpoints
# and the embedded training images: resumable, one heavy job at a time.
#
#   scripts/results56.sh            (rerun after an interruption: every file resumes)
#
# 1. resnet56 and plain56 at 51x51 on [-1, 1]^2, 1,000 training images, fp32, per-sample
#    losses kept (10 MB a file): the figures and bootstrap intervals.
# 2. three direction seeds each at 15x15 on 500 images: the spread over directions.
# A 56-layer point on 1,000 images costs about 1.6 s on 2 CPU cores: 1. is ~70 min per
# network there, minutes on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
out=runs/surfaces56
mkdir -p "$out"
# Wall time of each run (a resumed surface adds a line per run) and the machine.
timed() {
  local start=$SECONDS
  "$@"
  echo "$(date -u +%FT%TZ) $(( SECONDS - start )) s on $(nproc) CPU cores: ${*: -1}" >> "$out/times.txt"
}
for net in resnet56 plain56; do
  timed $PY -m landscape.compute --ckpt "pretrained:$net" --samples 1000 --x -1:1:51 \
      --y -1:1:51 --per-sample on --quiet --out "$out/${net}_51x51.h5"
done
for net in resnet56 plain56; do
  timed $PY -m landscape.compute --ckpt "pretrained:$net" --samples 500 --x -1:1:15 \
      --y -1:1:15 --seeds 0,1,2 --quiet --out "$out/${net}_15x15.h5"
done
# Published into docs/results without the direction tensors (regenerated from the seed when
# needed), then the numbers and figures of docs/results.md from the published files.
pub=docs/results
for f in "$out"/*_51x51.h5 "$out"/*_15x15_seed*.h5; do
  $PY -m landscape.export "$f" --publish --overwrite --out "$pub/$(basename "$f")"
done
$PY -m landscape.metrics "$pub"/resnet56_51x51.h5 "$pub"/plain56_51x51.h5 > "$pub/metrics_56_51x51.txt"
$PY -m landscape.metrics "$pub"/*56_15x15_seed*.h5 > "$pub/metrics_56_seeds.txt"
$PY -m landscape.plot --overwrite "$pub"/resnet56_51x51.h5 "$pub"/plain56_51x51.h5 \
    --kind contour --style li2018 --out "$pub/compare_56_51x51_contour.png"
$PY -m landscape.plot --overwrite "$pub"/resnet56_51x51.h5 "$pub"/plain56_51x51.h5 \
    --kind surface --style li2018 --out "$pub/compare_56_51x51_3d.png"
$PY -m landscape.plot --overwrite "$pub"/resnet56_51x51.h5 "$pub"/plain56_51x51.h5 \
    --kind contour --out "$pub/compare_56_51x51_contour_auto.png"
