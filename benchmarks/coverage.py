"""Coverage of the 95% intervals `landscape metrics` prints, measured on real surfaces.

    python benchmarks/coverage.py [--reps 400] [--resamples 200] [--sizes 250,1000]
                                  [--seed 2029] [--out coverage.md]

Population: the per-sample losses of the 1,000 images stored in the published
``docs/results/resnet56_51x51.h5`` and ``plain56_51x51.h5`` (51x51 on [-1, 1]^2, the same
images in both). The truth of a metric is its value on the full population (the
published surface). Each replication draws n images with replacement from the 1,000,
computes the metrics of their mean-loss surface and asks for each metric's interval
exactly as the library does (`INTERVAL_METHODS`, `interval_from_draws`, `resamples`
bootstrap resamples of the n images); the paired difference resnet56 - plain56 uses the
same resampled images on both sides, as `paired_differences` does. Coverage = the share
of replications whose interval holds the truth; its standard error is
sqrt(c (1 - c) / reps). Metrics the library gives no interval are measured with the
percentile, basic and basic-widened intervals, to show why.

Prints a Markdown table and, with ``--out``, writes it there (with the settings and the
compute time). Vectorized: every replication's resamples are one matrix product and one
`batch_metrics` call.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from landscape.analysis.metrics import batch_metrics
from landscape.analysis.uncertainty import INTERVAL_METHODS, KEY_METRICS, interval_from_draws
from landscape.io.surface_file import read_per_sample, read_surface

REPO = Path(__file__).resolve().parents[1]
NETS = ("resnet56", "plain56")
DIFF = "resnet56 - plain56 (paired)"


TRIED: dict[str, list[str]] = {}  # --try: other methods measured beside the chosen one


def _methods(name: str) -> list[str]:
    method = INTERVAL_METHODS.get(name)
    chosen = [method] if method else ["percentile", "basic", "basic-widened"]
    return chosen + [m for m in TRIED.get(name, []) if m not in chosen]


def coverage(
    files: dict[str, Path], sizes: list[int], reps: int, resamples: int, seed: int
) -> dict[tuple[str, int, str, str], list[bool]]:
    """(network or DIFF, n, metric, method) -> whether each replication's interval covered."""
    surfaces = {net: read_surface(path) for net, path in files.items()}
    pop = {}  # (points, images) per network
    for net, s in surfaces.items():
        losses = read_per_sample(s.path, "train")
        pop[net] = losses.reshape(-1, losses.shape[-1]).astype(np.float64)
    grid = surfaces[NETS[0]]
    n_pop = next(iter(pop.values())).shape[1]

    def metrics(net: str, weights: np.ndarray) -> dict[str, np.ndarray]:
        fs = (pop[net] @ weights).T.reshape(-1, *grid.shape)
        return batch_metrics(grid.alpha, grid.beta, fs)

    truth = {net: metrics(net, np.full((n_pop, 1), 1.0 / n_pop)) for net in NETS}
    truth[DIFF] = {k: truth[NETS[0]][k] - truth[NETS[1]][k] for k in KEY_METRICS}
    rng = np.random.default_rng(seed)
    hits: dict[tuple[str, int, str, str], list[bool]] = {}
    for n in sizes:
        for _ in range(reps):
            drawn = rng.integers(0, n_pop, n)  # the replication's n images
            counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).T  # (n, B)
            # population weights of the sample (last column) and of each resample
            w = np.zeros((n_pop, resamples + 1))
            np.add.at(w, drawn, np.hstack([counts, np.ones((n, 1))]))
            w /= n
            got = {net: metrics(net, w) for net in NETS}
            got[DIFF] = {k: got[NETS[0]][k] - got[NETS[1]][k] for k in KEY_METRICS}
            for who, values in got.items():
                for name in KEY_METRICS:
                    v, true = values[name], float(truth[who][name][0])
                    for method in _methods(name):
                        low, high = interval_from_draws(float(v[-1]), v[:-1], method)
                        hits.setdefault((who, n, name, method), []).append(low <= true <= high)
    return hits


def table(hits: dict, reps: int) -> str:
    sizes = sorted({k[1] for k in hits})
    whos = [*NETS, DIFF]
    head = ["metric", "interval", *(f"{w}, n={n}" for w in whos for n in sizes)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for name in KEY_METRICS:
        for method in _methods(name):
            cells = []
            for who in whos:
                for n in sizes:
                    c = float(np.mean(hits[(who, n, name, method)]))
                    cells.append(f"{c:.3f}")
            printed = INTERVAL_METHODS.get(name) == method
            shown = method if printed else f"{method} (not printed)"
            lines.append(f"| {name} | {shown} | " + " | ".join(cells) + " |")
    se = math.sqrt(0.95 * 0.05 / reps)
    lines.append("")
    lines.append(
        f"{reps} replications per cell (standard error of a coverage near 0.95: {se:.3f})."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=400, help="replications per n (400)")
    p.add_argument("--resamples", type=int, default=200, help="bootstrap resamples (200)")
    p.add_argument("--sizes", default="250,1000", help="samples per replication (250,1000)")
    p.add_argument("--seed", type=int, default=2029, help="random seed (2029)")
    p.add_argument("--results", default=str(REPO / "docs" / "results"), help="the files' folder")
    p.add_argument("--out", default=None, help="also write the table here (Markdown)")
    p.add_argument(
        "--try",
        dest="tried",
        action="append",
        default=[],
        metavar="METRIC=METHOD",
        help="also measure another interval method for a metric (repeatable)",
    )
    args = p.parse_args(argv)
    for item in args.tried:
        name, _, method = item.partition("=")
        TRIED.setdefault(name, []).append(method)
    files = {net: Path(args.results) / f"{net}_51x51.h5" for net in NETS}
    sizes = [int(v) for v in args.sizes.split(",")]
    start, cpu = time.time(), time.process_time()
    hits = coverage(files, sizes, args.reps, args.resamples, args.seed)
    wall, cpu = time.time() - start, time.process_time() - cpu
    text = (
        f"`python benchmarks/coverage.py --reps {args.reps} --resamples {args.resamples} "
        f"--sizes {args.sizes} --seed {args.seed}"
        + "".join(f" --try {t}" for t in args.tried)
        + f"`: {wall:.0f} s wall, {cpu:.0f} s CPU.\n\n"
        + table(hits, args.reps)
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
