#!/usr/bin/env bash
# Reproduces docs/results.md "Mode connectivity": resnet20 and plain20 each trained a second
# time with seed 1 (shipped as pretrained:NAME_seed1), a Bezier curve trained between the two
# minima of each, the curve and the straight line evaluated, the plane through A, B and the
# bend, the barriers, the figures. Every step resumes where it stopped: rerun after a stop.
#
#   scripts/connect.sh DATA_DIR            (DATA_DIR: ImageFolder tree with train/ and test/,
#                                           e.g. from ../shared/data/unpack-cifar10.sh)
set -euo pipefail
data=${1:?usage: scripts/connect.sh DATA_DIR}
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
EPOCHS=${EPOCHS:-8}  # curve training epochs (Garipov et al. train 600; 8 is what a CPU allowed)
runs=runs/connect res=docs/results
mkdir -p "$runs" "$res"
for net in resnet20 plain20; do
  # The twin: the recipe of docs/results.md "Training", seed 1.
  $PY -m landscape.train --model "$net" --dataset "imagefolder:$data" --epochs 20 \
      --schedule onecycle --lr 0.2 --weight-decay 5e-4 --seed 1 --out "$runs/${net}_seed1" \
      --no-progress
  [ -f "landscape/assets/pretrained/${net}_seed1.pt" ] ||
    $PY scripts/ship_pretrained.py "$runs/${net}_seed1" --name "${net}_seed1"
  # The curve, on the 50,000 training images (t ~ U(0, 1) per batch, constant lr 0.05).
  $PY -m landscape.connect --ckpt "pretrained:$net" --ckpt2 "pretrained:${net}_seed1" \
      --dataset "imagefolder:$data" --epochs "$EPOCHS" --points 0 --out "$runs/${net}_curve.pt" \
      --quiet
  # Curve and line at 21 values of t on 1,000 + 1,000 images, BatchNorm re-estimated at each
  # t from 2,048 training images; the plane (17x17 on [-0.25, 1.25]^2, 500 images).
  $PY - "$runs/${net}_curve" "imagefolder:$data" <<'PYEOF'
import sys, time
from landscape import DataSpec, curve_plane, evaluate_curve
stem, dataset = sys.argv[1], sys.argv[2]
start = time.time()
evaluate_curve(f"{stem}.pt", out=f"{stem}.h5", points=21, data=DataSpec(dataset=dataset,
    samples=1000), bn="recompute", bn_samples=2048, device="cpu", progress=False)
print(f"{stem}: curve and line evaluated in {time.time() - start:.0f} s")
start = time.time()
curve_plane(f"{stem}.pt", f"{stem}_plane.h5", points=17, split="train",
    data=DataSpec(dataset=dataset, samples=500), bn="recompute", bn_samples=1024,
    device="cpu", progress=False)
print(f"{stem}: plane in {time.time() - start:.0f} s")
PYEOF
  for f in "$runs/${net}_curve.h5" "$runs/${net}_curve_line.h5" "$runs/${net}_curve_plane.h5"; do
    $PY -m landscape.export "$f" --publish --overwrite --out "$res/$(basename "$f")"
  done
done
$PY -m landscape.metrics $(for n in resnet20 plain20; do printf '%s ' "$res/${n}_curve.h5" "$res/${n}_curve_line.h5"; done) \
    > "$res/metrics_connect.txt"
$PY -m landscape.plot --overwrite "$res/resnet20_curve_plane.h5" "$res/plain20_curve_plane.h5" \
    --out "$res/connect_plane.png" --dpi 90
$PY -m landscape.plot --overwrite "$res/resnet20_curve.h5" "$res/resnet20_curve_line.h5" \
    "$res/plain20_curve.h5" "$res/plain20_curve_line.h5" --split train,test \
    --out "$res/connect_paths.png" --dpi 90
cat "$res/metrics_connect.txt"
