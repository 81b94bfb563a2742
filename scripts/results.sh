#!/usr/bin/env bash
# Reproduces docs/results.md: training on CIFAR-10, surfaces, figures, tables.
# Every step resumes where it stopped: rerun the script after an interruption.
#
#   scripts/results.sh DATA_DIR            (DATA_DIR: ImageFolder tree with train/ and test/,
#                                           e.g. from ../shared/data/unpack-cifar10.sh)
#
# Environment: NETS (networks to train and compute, default all four), EPOCHS (20);
# the surface settings per depth as used in docs/results.md: 20 layers 21x21 on 2,000
# training images, 56 layers 17x17 on 500 (what a 2-core CPU allowed in the session;
# GRID_56 and SAMPLES_56 change them).
set -euo pipefail
data=${1:?usage: scripts/results.sh DATA_DIR}
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
ALL="resnet20 plain20 resnet56 plain56"
NETS=${NETS:-$ALL}
EPOCHS=${EPOCHS:-20}
res=docs/results
surf=runs/surfaces  # full files; docs/results gets copies without direction tensors
mkdir -p "$res" "$surf"

grid_of() { case $1 in *56) echo "${GRID_56:-17}" ;; *) echo "${GRID_20:-21}" ;; esac; }
samples_of() { case $1 in *56) echo "${SAMPLES_56:-500}" ;; *) echo "${SAMPLES_20:-2000}" ;; esac; }

for net in $NETS; do
  # Standard augmentation, one-cycle schedule (peak lr 0.2), bf16 autocast on AMX CPUs.
  $PY -m landscape.train --model "$net" --dataset "imagefolder:$data" --epochs "$EPOCHS" \
      --schedule onecycle --lr 0.2 --weight-decay 5e-4 --out "runs/$net" --no-progress
done

for net in $NETS; do
  grid=$(grid_of "$net") samples=$(samples_of "$net")
  # Li et al. Fig. 5: filter-normalized 2-D surface of the training loss on a fixed subset.
  $PY -m landscape.compute --ckpt "runs/$net/final.pt" --dataset "imagefolder:$data" \
      --samples "$samples" --x "-1:1:$grid" --y "-1:1:$grid" --out "$surf/${net}_2d.h5" --quiet
done
for net in $NETS; do
  $PY -m landscape.compute --ckpt "runs/$net/final.pt" --dataset "imagefolder:$data" \
      --samples "$(samples_of "$net")" --split train,test --x -1:1:51 \
      --out "$surf/${net}_1d.h5" --quiet
done
# Published without the direction tensors (98% of each file): `--seed` regenerates them.
for f in "$surf"/*.h5; do
  $PY -m landscape.export "$f" --publish --overwrite --out "$res/$(basename "$f")"
done

# Figures and tables over every network whose results exist.
have=$(for n in $ALL; do [ -f "$res/${n}_2d.h5" ] && printf '%s ' "$n"; done)
files() { for n in $1; do printf '%s ' "$res/${n}_$2.h5"; done; }
for depth in 20 56; do
  pair="resnet$depth plain$depth"
  [ -f "$res/resnet${depth}_2d.h5" ] && [ -f "$res/plain${depth}_2d.h5" ] || continue
  suffix=$([ "$depth" = 20 ] && echo "" || echo "_56")
  $PY -m landscape.plot --overwrite $(files "$pair" 2d) --kind contour --log \
      --out "$res/compare${suffix}_contour.png" --dpi 90
  $PY -m landscape.plot --overwrite $(files "$pair" 2d) --kind surface --out "$res/compare${suffix}_3d.png" --dpi 90
done
$PY -m landscape.plot --overwrite $(files "$have" 1d) --split train,test --out "$res/slices_1d.png" --dpi 90
$PY -m landscape.curves --overwrite $(for n in $have; do printf 'runs/%s ' "$n"; done) \
    --out "$res/degradation.png" --dpi 90
$PY -m landscape.metrics $(files "$have" 2d) > "$res/metrics.txt"
$PY -m landscape.responses --overwrite $(for n in $have; do printf 'runs/%s/final.pt ' "$n"; done) \
    --dataset "imagefolder:$data" --samples 500 --out "$res/responses.json" \
    --figure "$res/responses.png" --grad-figure "$res/gradients.png"
$PY -m landscape.view --overwrite $(files "$have" 2d) $(files "$have" 1d) --out "$res/view.html" \
    --title "CIFAR-10: skip vs no-skip"
