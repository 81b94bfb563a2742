#!/usr/bin/env bash
# The Hessian of each ResNet vs its plain twin at theta* (issue #31): the SLQ spectral
# density and the top eigenvalue and trace per stage, on the shipped checkpoints and the
# first 128 embedded training images. Resumable: a result already written is kept.
#
#   scripts/spectrum.sh            (DEPTHS="56 20", SAMPLES=, PROBES=, DEPTH=, ITERS=, TRACE=)
#
# Cost, one thread at nice 10 on a shared 2-core machine: a 56-layer Hessian-vector product
# on 128 images is about 3.4 s (20-layer: about a third), so the 56-layer density (PROBES x
# DEPTH = 120 products) takes about 7 min per network and the stages (5 x (ITERS + TRACE))
# about 11 min; on a GPU, seconds. Wall times go to runs/spectrum_times.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEPTHS=${DEPTHS:-56 20}
SAMPLES=${SAMPLES:-128}
PROBES=${PROBES:-4}
DEPTH=${DEPTH:-30}
ITERS=${ITERS:-30}
TRACE=${TRACE:-8}
out=docs/results
times=runs/spectrum_times.txt
mkdir -p runs
timed() {
  local start=$SECONDS
  "$@"
  echo "$(date -u +%FT%TZ) $(( SECONDS - start )) s, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}: $*" >> "$times"
}
for d in $DEPTHS; do
  prev=()
  for net in "resnet$d" "plain$d"; do
    f="$out/${net}_density.json"
    [ -e "$f" ] || timed $PY -m landscape.hessian --ckpt "pretrained:$net" --samples "$SAMPLES" \
        --density --probes "$PROBES" --depth "$DEPTH" --quiet --out "$f" \
        --figure "$out/density_$d.png" --overwrite ${prev[@]+"${prev[@]}"}
    prev=(--compare "$f")
  done
  prev=()
  for net in "resnet$d" "plain$d"; do
    f="$out/${net}_stages.json"
    [ -e "$f" ] || timed $PY -m landscape.hessian --ckpt "pretrained:$net" --samples "$SAMPLES" \
        --per-block stage --iters "$ITERS" --tol 1e-3 --trace-samples "$TRACE" --quiet \
        --out "$f" --figure "$out/stages_$d.png" --overwrite ${prev[@]+"${prev[@]}"}
    prev=(--compare "$f")
  done
  # Sharpness on 512 images in 4 batches of m = 128: worst case (adaptive L2 ball of radius
  # 0.5, ASAM's scale, 10 ascent steps) and average case (filter-normalized noise of 10%).
  for net in "resnet$d" "plain$d"; do
    f="$out/${net}_sharpness_worst.json"
    [ -e "$f" ] || timed $PY -m landscape.hessian --ckpt "pretrained:$net" --samples 512 \
        --sharpness worst --rho 0.5 --scale adaptive --ball l2 --m 128 --ascent-steps 10 \
        --quiet --out "$f"
    f="$out/${net}_sharpness_average.json"
    [ -e "$f" ] || timed $PY -m landscape.hessian --ckpt "pretrained:$net" --samples 512 \
        --sharpness average --rho 0.1 --scale filter --m 128 --perturbations 10 --quiet \
        --out "$f"
  done
done
# The data part of the 56-layer stages' lambda_max: the same runs with each of 4 batches of
# the 128 images left out in turn (delete-one-group jackknife; no trace).
prev=()
for net in resnet56 plain56; do
  f="$out/${net}_stages_jackknife.json"
  [ -e "$f" ] || timed $PY -m landscape.hessian --ckpt "pretrained:$net" --samples "$SAMPLES" \
      --per-block stage --iters "$ITERS" --tol 1e-3 --trace-samples 0 --jackknife 4 --quiet \
      --out "$f" --figure "$out/stages_56_jackknife.png" --overwrite ${prev[@]+"${prev[@]}"}
  prev=(--compare "$f")
done
# The numbers quoted in docs/results.md, and each pair's densities redrawn from the stored
# nodes and weights at a wider smoothing (1% of the spectral range), where the band shows.
for d in $DEPTHS; do
  [ -e "$out/plain${d}_stages.json" ] || continue
  $PY - "$d" "$out" > "$out/spectrum_$d.txt" <<'PY'
import sys

import numpy as np

import landscape as ls

d, out = sys.argv[1], sys.argv[2]
dens = {n: ls.read_curvature_result(f"{out}/{n}{d}_density.json") for n in ("resnet", "plain")}
stages = {n: ls.read_curvature_result(f"{out}/{n}{d}_stages.json") for n in ("resnet", "plain")}
print(f"# scripts/spectrum.sh: resnet{d} vs plain{d}, Hessian of the mean train loss at theta*")
for n, doc in dens.items():
    lo, hi = doc["trace_interval95"]
    print(
        f"{n}{d} density: {len(doc['probes'])} {doc['probe']} probes x {doc['depth']} steps, "
        f"{doc['dimension']:,} weights, {doc['samples']} samples, {doc['seconds']:.0f} s; "
        f"nodes [{doc['lambda_min_node']:.3f}, {doc['lambda_max_node']:.3f}]; "
        f"trace {doc['trace']:.0f} +- {doc['trace_stderr']:.0f} (95% [{lo:.0f}, {hi:.0f}])"
    )
measures = {}
for n, doc in dens.items():
    nodes = [p["nodes"] for p in doc["probes"]]
    weights = [p["weights"] for p in doc["probes"]]
    measures[n] = (np.concatenate(nodes), np.concatenate(weights), nodes, weights)
a, b = measures["resnet"], measures["plain"]
between = ls.wasserstein1(a[0], a[1], b[0], b[1])
within = {
    n: np.mean([ls.wasserstein1(m[2][i], m[3][i], m[2][j], m[3][j])
                for i in range(len(m[2])) for j in range(i + 1, len(m[2]))])
    for n, m in measures.items()
}  # fmt: skip
print(
    f"W1(resnet{d}, plain{d}) = {between:.3f}; mean W1 between two probes of one network: "
    f"resnet {within['resnet']:.3f}, plain {within['plain']:.3f}"
)
print(f"per stage ({stages['resnet']['config']['trace_samples']} trace probes, "
      f"{stages['resnet']['config']['iters']} Lanczos steps, tol {stages['resnet']['config']['tol']:g}):")
print(f"{'group':<8} {'net':<9} {'params':>9}  {'lambda_max [Ritz, +bound]':<28} trace +- se")
for i, blk in enumerate(stages["resnet"]["blocks"]):
    for n in ("resnet", "plain"):
        s = stages[n]["blocks"][i]
        conv = "" if s["converged"] else " (not converged)"
        lam = f"{s['lambda_max']:.2f} [+{s['lambda_max_bound']:.2g}]{conv}"
        print(
            f"{s['name']:<8} {n + d:<9} {s['parameters']:>9,}  {lam:<28} "
            f"{s['trace']:.1f} +- {s['trace_stderr']:.1f}"
        )
for n in ("resnet", "plain"):
    print(f"{n}{d} per-stage compute: {stages[n]['seconds']:.0f} s")
for kind in ("worst", "average"):
    for n in ("resnet", "plain"):
        try:
            r = ls.read_curvature_result(f"{out}/{n}{d}_sharpness_{kind}.json", "sharpness")
        except ls.InputError:
            continue
        lo, hi = r["interval95"]
        print(
            f"{n}{d} {kind}-case sharpness (rho {r['radius']:g}, {r['scale']}): "
            f"{r['value']:.4g} +- {r['stderr']:.2g} (95% [{lo:.4g}, {hi:.4g}]), "
            f"{len(r['per_batch'])} batches of m={r['m']}, loss at theta* {r['base_loss']:.4f}, "
            f"{r['seconds']:.0f} s"
        )
span = max(m[0].max() for m in measures.values()) - min(m[0].min() for m in measures.values())
fig = ls.density_figure(
    [(f"{n}{d}", doc) for n, doc in dens.items()], sigma=0.01 * span,
    title=f"Hessian spectral density, resnet{d} vs plain{d}",
)  # fmt: skip
fig.savefig(f"{out}/density_{d}_smooth.png", dpi=150)
PY
done
