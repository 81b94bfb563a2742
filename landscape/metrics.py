"""``python -m landscape.metrics FILE.h5 [...]``: a table of surface metrics, one row per file.

Each value is described in `landscape.analysis.metrics`. Then the 95% intervals
(`landscape.analysis.uncertainty`: each metric's interval has measured coverage, see
``benchmarks/coverage.py``) and the comparisons: two files of the same samples are
compared paired (the difference A - B with its interval, a difference where it excludes
0), others unpaired, said so. ``--json`` prints a list of objects instead (unknown
values as null).
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from collections.abc import Sequence

from landscape.analysis.connectivity import connectivity_lines
from landscape.analysis.metrics import (
    METRIC_DEFINITIONS,
    hessian_curvature,
    metrics_table,
    surface_metrics,
)
from landscape.analysis.uncertainty import (
    comparison_lines,
    intervals_table,
    measure,
)
from landscape.cli import options
from landscape.cli.runner import ArgumentParser, HelpFormatter, exit_after, guarded
from landscape.core.errors import InputError
from landscape.io.surfaces import read_surface

__all__ = ["MAX_RAYS", "MAX_RESAMPLES", "main"]

MAX_RAYS = 3600  # one every 0.1 degree
MAX_RESAMPLES = 100_000


class MetricsHelp(HelpFormatter):
    """The column definitions as written, one per line, after the options."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            textwrap.fill(
                line,
                width,
                initial_indent=indent,
                subsequent_indent=indent + "    ",
                break_on_hyphens=False,
            )
            for line in text.splitlines()
        )


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="landscape metrics",
        description="Quantitative summaries of loss surfaces (one row per file), their 95% "
        "intervals and the differences between surfaces.",
        epilog="columns:\n"
        + "\n".join(f"  {name}: {text}" for name, text in METRIC_DEFINITIONS.items()),
        formatter_class=MetricsHelp,
    )
    p.add_argument("files", nargs="+", metavar="FILE.h5", help="surface files")
    p.add_argument("--split", default="train", help="data split")
    p.add_argument("--metric", default="loss", help="value array")
    p.add_argument(
        "--radius",
        type=options.positive_float,
        default=0.2,
        help="radius of the sharpness",
    )
    p.add_argument(
        "--basin-delta",
        type=options.positive_float,
        default=1.0,
        help="the basin ends where the loss exceeds center + DELTA",
    )
    p.add_argument("--rays", type=int, default=32, help="rays for basin and sharpness (2-D)")
    p.add_argument(
        "--resamples",
        type=options.positive_int,
        default=200,
        help="bootstrap resamples of the samples, for files with per-sample losses",
    )
    p.add_argument(
        "--no-intervals", action="store_true", help="the table only (no intervals, no comparison)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 2 bad input)."""
    return guarded("landscape metrics", lambda: _run(build_parser().parse_args(argv)))


def _run(args: argparse.Namespace) -> int:
    # Bounded before anything is allocated: rays x grid values, resamples x per-sample rows.
    if not 1 <= args.rays <= MAX_RAYS:
        raise InputError(f"--rays must be in 1..{MAX_RAYS}; got {args.rays}")
    if args.resamples > MAX_RESAMPLES:
        raise InputError(
            f"--resamples must be at most {MAX_RESAMPLES:,} (200 give the intervals; "
            f"more change them little); got {args.resamples:,}"
        )
    rows = []
    for path in args.files:
        surface = read_surface(path)
        metrics = surface_metrics(
            surface,
            split=args.split,
            metric=args.metric,
            radius=args.radius,
            basin_delta=args.basin_delta,
            n_rays=args.rays,
        )
        rows.append((path, surface, metrics))
    # Li et al.'s curvature (full Hessian), where `landscape hessian --surface` stored it.
    hessian = {path: hessian_curvature(s, args.split) for path, s, _ in rows}
    measurements = []
    if not args.no_intervals and args.metric == "loss":
        surfaces = [s for _, s, _ in rows]
        measurements = measure(
            surfaces,
            split=args.split,
            resamples=args.resamples,
            radius=args.radius,
            basin_delta=args.basin_delta,
            n_rays=args.rays,
        )
    connectivity: tuple[list[str], list] = ([], [])
    if args.metric == "loss":
        connectivity = connectivity_lines(
            [s for _, s, _ in rows],
            split=args.split,
            resamples=args.resamples,
            intervals=not args.no_intervals,
        )
    if args.json:
        doc = {
            "surfaces": [
                {
                    "file": str(path),
                    "label": s.label,
                    **{k: _finite(v) for k, v in m.items()},
                    "hessian_curvature": None
                    if hessian[path] is None
                    else {k: _finite(v) for k, v in hessian[path].items()},
                    "evaluated_points": int(s.evaluated.sum()),
                    "interpolated_points": 0
                    if s.interpolated is None
                    else int(s.interpolated.sum()),
                    "tolerance": s.tolerance,
                }
                for path, s, m in rows
            ],
            "intervals": [
                {
                    "label": ms.label,
                    "files": ms.files,
                    "method": ms.note,
                    "metrics": {
                        k: {
                            "value": _finite(i.value),
                            "low": _finite(i.low),
                            "high": _finite(i.high),
                        }
                        for k, i in ms.intervals.items()
                    },
                }
                for ms in measurements
            ],
            "comparisons": comparison_lines(measurements),
            "connectivity": connectivity[1],
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(metrics_table([(str(path), m) for path, _, m in rows]))
    for path, s, _ in rows:
        if s.interpolated is not None:
            print(
                f"{path}: adaptive refinement: {int(s.evaluated.sum())} of "
                f"{s.interpolated.size} points evaluated, {int(s.interpolated.sum())} "
                f"interpolated (loss within {s.tolerance:g} by design); the metrics are of "
                "the complete grid"
            )
    mapped = {path: h for path, h in hessian.items() if h is not None}
    if mapped:
        print(
            "\nLi et al.'s curvature: |lambda_min/lambda_max| of the full Hessian "
            "(landscape hessian --surface; no interval):"
        )
        for path, h in mapped.items():
            print(
                f"{path}: median {h['median']:.4g}, max {h['max']:.4g} "
                f"over {int(h['points'])} points"
            )
    if measurements:
        grouped = [m.label for m in measurements if len(m.files) > 1]
        print(
            "\n95% intervals"
            + (f" (seed files grouped: {'; '.join(grouped)})" if grouped else "")
            + ":"
        )
        print(intervals_table(measurements))
        lines = comparison_lines(measurements)
        if lines:
            print("\ncomparisons (paired where two files hold the same samples):")
            print("\n".join(lines))
    if connectivity[0]:
        print(
            "\nmode connectivity: loss barrier = max over t - mean of the endpoints (95% "
            "paired bootstrap over the samples where kept):"
        )
        print("\n".join(connectivity[0]))
    return 0


if __name__ == "__main__":
    exit_after(main())
