#!/usr/bin/env bash
# Reproduces docs/results.md: training on CIFAR-10, surfaces, figures, tables.
# Every step resumes where it stopped: rerun the script after an interruption.
#
#   scripts/results.sh DATA_DIR            (DATA_DIR: ImageFolder tree with train/ and test/,
#                                           e.g. from ../shared/data/unpack-cifar10.sh)
# Environment: NETS (default "resnet20 plain20"), EPOCHS (20), GRID (21), SAMPLES (2000).
set -euo pipefail
data=${1:?usage: scripts/results.sh DATA_DIR}
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
NETS=${NETS:-resnet20 plain20}
EPOCHS=${EPOCHS:-20}
GRID=${GRID:-21}
SAMPLES=${SAMPLES:-2000}
res=docs/results
mkdir -p "$res" runs

for net in $NETS; do
  # Standard augmentation, one-cycle schedule (peak lr 0.2), bf16 autocast on AMX CPUs.
  $PY -m landscape.train --model "$net" --dataset "imagefolder:$data" --epochs "$EPOCHS" \
      --schedule onecycle --lr 0.2 --weight-decay 5e-4 --out "runs/$net" --no-progress
done

for net in $NETS; do
  # Li et al. Fig. 5: filter-normalized 2-D surface of the training loss on a fixed subset.
  $PY -m landscape.compute --ckpt "runs/$net/final.pt" --dataset "imagefolder:$data" \
      --samples "$SAMPLES" --x "-1:1:$GRID" --y "-1:1:$GRID" --out "$res/${net}_2d.h5" --quiet
  $PY -m landscape.compute --ckpt "runs/$net/final.pt" --dataset "imagefolder:$data" \
      --samples "$SAMPLES" --split train,test --x -1:1:51 --out "$res/${net}_1d.h5" --quiet
done

files_2d=$(for n in $NETS; do printf '%s ' "$res/${n}_2d.h5"; done)
files_1d=$(for n in $NETS; do printf '%s ' "$res/${n}_1d.h5"; done)
runs=$(for n in $NETS; do printf '%s ' "runs/$n"; done)
$PY -m landscape.plot $files_2d --kind contour --log --out "$res/compare_contour.png" --dpi 90
$PY -m landscape.plot $files_2d --kind surface --out "$res/compare_3d.png" --dpi 90
$PY -m landscape.plot $files_1d --split train,test --out "$res/slices_1d.png" --dpi 90
$PY -m landscape.curves $runs --out "$res/degradation.png" --dpi 90
$PY -m landscape.metrics $files_2d > "$res/metrics.txt"
$PY -m landscape.analyze responses $(for n in $NETS; do printf '%s ' "runs/$n/final.pt"; done) \
    --dataset "imagefolder:$data" --samples 500 --out "$res/responses.json" \
    --figure "$res/responses.png" --grad-figure "$res/gradients.png"
$PY -m landscape.view $files_2d $files_1d --out "$res/view.html" --title "CIFAR-10: skip vs no-skip"
