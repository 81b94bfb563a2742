"""``python -m landscape.metrics FILE.h5 [...]``: a table of surface metrics, one row per file.

Each value is described in `landscape.surface_metrics`. ``--json`` prints a list of
objects instead (unknown values as null).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from . import cliutil
from .cliutil import ArgumentParser, guarded
from .errors import InputError
from .legacy import load_any_surface
from .surface_metrics import METRIC_NAMES, surface_metrics

__all__ = ["main", "format_table"]

_SHORT = {
    "center_loss": "center",
    "min_loss": "min",
    "min_alpha": "min_a",
    "min_beta": "min_b",
    "local_minima": "minima",
    "nonconvex_fraction": "nonconvex",
    "curvature_ratio": "|lmin/lmax|",
    "basin_radius": "basin_r",
    "basin_closed": "closed",
    "sharpness": "sharpness",
    "computed_fraction": "computed",
}


def _fmt(name: str, value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if name == "local_minima":
        return str(int(value))
    return f"{value:.4g}"


def format_table(rows: Sequence[tuple[str, dict[str, float]]]) -> str:
    """A fixed-width text table: the row label, then one column per metric."""
    header = ["surface", *(_SHORT.get(n, n) for n in METRIC_NAMES)]
    body = [[label, *(_fmt(n, m[n]) for n in METRIC_NAMES)] for label, m in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = []
    for r in [header, *body]:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="landscape metrics",
        description="Quantitative summaries of loss surfaces (one row per file).",
    )
    p.add_argument("files", nargs="+", metavar="FILE.h5", help="surface files")
    p.add_argument("--split", default="train", help="data split (default: train)")
    p.add_argument("--metric", default="loss", help="value array (default: loss)")
    p.add_argument(
        "--radius",
        type=cliutil.positive_float,
        default=0.2,
        help="radius of the sharpness (default: 0.2)",
    )
    p.add_argument(
        "--basin-delta",
        type=cliutil.positive_float,
        default=1.0,
        help="the basin ends where the loss exceeds center + DELTA (default: 1.0)",
    )
    p.add_argument("--rays", type=int, default=32, help="rays for basin and sharpness (2-D)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 2 bad input)."""
    return guarded("landscape metrics", lambda: _run(_parser().parse_args(argv)))


def _run(args: argparse.Namespace) -> int:
    if args.rays < 1:
        raise InputError(f"--rays must be at least 1; got {args.rays}")
    rows = []
    for path in args.files:
        surface = load_any_surface(path)
        metrics = surface_metrics(
            surface,
            split=args.split,
            metric=args.metric,
            radius=args.radius,
            basin_delta=args.basin_delta,
            n_rays=args.rays,
        )
        rows.append((path, surface.label, metrics))
    if args.json:
        doc = [
            {
                "file": str(path),
                "label": label,
                **{k: (v if math.isfinite(v) else None) for k, v in m.items()},
            }
            for path, label, m in rows
        ]
        print(json.dumps(doc, indent=1))
    else:
        print(format_table([(str(path), m) for path, _, m in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
