"""Adaptive refinement (``compute --tolerance``) against the full grid, on published surfaces.

The published 51x51 files of docs/results (resnet56 and plain56, every point computed)
are the ground truth. For each tolerance the refinement runs exactly as `compute` runs it
(`landscape.surface.refine.Walk`: the same levels, checks and decisions) with "evaluating
a point" = reading it from the full file, so the points it would evaluate, the predictions
it would store and their errors are exact, without recomputing the grid. Wall time is then
measured in the same run: K of the points it evaluates are evaluated for real (the same
checkpoint, data and regenerated directions; their losses are checked against the file),
giving the time per point on this machine, and the planning time of the walk is timed:

    adaptive wall time = evaluated points x time per point + planning time
    full wall time     = every point x time per point

    python benchmarks/bench_refine.py                            # both files, 3 tolerances
    python benchmarks/bench_refine.py --tolerances 0.01,0.1 --measure 0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from landscape.analysis.metrics import surface_metrics
from landscape.analysis.uncertainty import bootstrap_metrics
from landscape.io.surface_file import Surface, read_surface
from landscape.surface.config import SurfaceConfig
from landscape.surface.direction_policy import config_directions
from landscape.surface.engine import load_inputs, prepare
from landscape.surface.grid import grid_origin
from landscape.surface.refine import Refinement, Walk

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def refine_with_oracle(full: Surface, tolerance: float) -> tuple[Walk, int, float]:
    """The walk `compute --tolerance` takes on `full`'s grid; (walk, evaluated, planning s)."""
    truth = full.get()
    walk = Walk(
        Refinement(truth.shape, grid_origin(full.alpha, full.beta), tolerance),
        {"train_loss": np.full(truth.size, np.nan)},
        np.zeros(truth.size, dtype=bool),
    )
    evaluated, planning = 0, 0.0
    while True:
        start = time.perf_counter()
        step = walk.step()
        planning += time.perf_counter() - start
        if step is None:
            return walk, evaluated, planning
        todo, _ = step
        walk.record(todo, {"train_loss": truth.ravel()[todo]})
        evaluated += len(todo)


def seconds_per_point(full: Surface, flat: np.ndarray, k: int) -> tuple[float, float]:
    """Evaluate `k` of the points `flat` for real: (seconds per point, largest relative
    difference from the file's values)."""
    config = SurfaceConfig.from_json({**full.config, "device": "cpu", "per_sample": "off"})
    job = load_inputs(config, torch.device("cpu"))
    prepared = prepare(job.model, job.data, job.config, device=torch.device("cpu"))
    dirs = config_directions(job.config, prepared.model, torch.device("cpu"))
    evaluator = prepared.evaluator(job.config, dirs)
    pick = np.random.default_rng(0).choice(flat, size=k, replace=False)
    index = np.unravel_index(pick, full.shape)
    coords = np.stack([full.alpha[index[0]], full.beta[index[1]]], axis=1)
    evaluator(coords[:1])  # warm-up
    start = time.perf_counter()
    values = evaluator(coords)
    per_point = (time.perf_counter() - start) / k
    expected = full.get()[index]
    return per_point, float(np.max(np.abs(values["train_loss"] / expected - 1)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", default="resnet56_51x51,plain56_51x51")
    p.add_argument("--tolerances", default="0.01,0.03,0.1")
    p.add_argument("--measure", type=int, default=4, help="points evaluated for real per file")
    p.add_argument("--resamples", type=int, default=200, help="bootstrap of the full file")
    p.add_argument("--json", type=Path, help="write the rows here too")
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for name in args.files.split(","):
        full = read_surface(RESULTS / f"{name}.h5")
        truth, n = full.get(), full.get().size
        intervals = bootstrap_metrics(full, resamples=args.resamples, seed=0)
        per_point = relative = float("nan")
        for tol in (float(t) for t in args.tolerances.split(",")):
            walk, evaluated, planning = refine_with_oracle(full, tol)
            skipped = walk.skipped.reshape(truth.shape)
            predicted = walk.grids()["train_loss"]
            err = np.abs(predicted - truth)[skipped]
            if args.measure and np.isnan(per_point):
                flat = np.flatnonzero(~skipped)
                per_point, relative = seconds_per_point(full, flat, args.measure)
            adaptive = Surface(full.alpha, full.beta, {"train_loss": predicted}, full.config)
            inside, total = 0, 0
            for metric, value in surface_metrics(adaptive).items():
                interval = intervals.get(metric) if intervals else None
                if interval is None or not interval.known or not np.isfinite(value):
                    continue
                total += 1
                inside += interval.low <= value <= interval.high
            row = {
                "file": name,
                "tolerance": tol,
                "points": n,
                "evaluated": evaluated,
                "share": evaluated / n,
                "worst_error": float(err.max()) if err.size else 0.0,
                "mean_error": float(err.mean()) if err.size else 0.0,
                "planning_s": planning,
                "seconds_per_point": per_point,
                "full_wall_s": n * per_point,
                "adaptive_wall_s": evaluated * per_point + planning,
                "metrics_inside_full_intervals": f"{inside}/{total}",
                "measured_points_max_rel_diff": relative,
            }
            rows.append(row)
    print(
        f"{'file':<16}{'TOL':>7}{'evaluated':>16}{'worst err':>11}{'mean err':>10}"
        f"{'full':>9}{'adaptive':>10}{'ratio':>7}{'metrics in CI':>15}"
    )
    for r in rows:
        ratio = r["adaptive_wall_s"] / r["full_wall_s"] if r["full_wall_s"] else float("nan")
        print(
            f"{r['file']:<16}{r['tolerance']:>7g}"
            f"{r['evaluated']:>8}/{r['points']} {r['share']:>5.1%}"
            f"{r['worst_error']:>11.4f}{r['mean_error']:>10.5f}"
            f"{r['full_wall_s'] / 60:>7.1f}m{r['adaptive_wall_s'] / 60:>9.1f}m{ratio:>7.2f}"
            f"{r['metrics_inside_full_intervals']:>15}"
        )
    measured = {r["file"]: r["seconds_per_point"] for r in rows}
    print(
        "time per point measured here on "
        + ", ".join(f"{f}: {s:.2f} s" for f, s in measured.items())
        + f" ({args.measure} points each, {torch.get_num_threads()} threads); their losses "
        f"match the files within rel {max(r['measured_points_max_rel_diff'] for r in rows):.1e}"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
