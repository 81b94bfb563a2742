"""``landscape curves RUN [RUN ...] --out FIG``: training and test error against epoch.

He et al. 2015, Fig. 1 and Fig. 6 (degradation): thin dashed lines are training
error, bold lines test error, one colour per run; plain nets and ResNets in
side-by-side panels. The figure is `landscape.viz.curves.degradation_figure`.
"""

from __future__ import annotations

import argparse

from landscape.analysis.curves import CURVE_METRICS, LAYOUTS, CurvesError
from landscape.cli import options
from landscape.cli.options import add_overwrite_argument
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.files import atomic_savefig, check_output
from landscape.viz.curves import degradation_figure


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="landscape curves",
        description="Training and test error against epoch for several training runs.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders or metrics files")
    parser.add_argument("--out", required=True, help="figure file (.png, .pdf, .svg)")
    parser.add_argument(
        "--label", action="append", default=None, help="a label per RUN (default: model name)"
    )
    parser.add_argument(
        "--metric", choices=CURVE_METRICS, default="error", help="what is drawn against epoch"
    )
    parser.add_argument(
        "--splits", default="train,test", help="train,test (default) | train | test"
    )
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="auto: plain | ResNet")
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument("--dpi", type=options.dpi, default=150, help="resolution of a PNG")
    add_overwrite_argument(parser, "--out")
    return parser


def main(argv: list[str] | None = None) -> int:
    return guarded("landscape curves", lambda: _run(build_parser().parse_args(argv)))


def _run(args: argparse.Namespace) -> int:
    if args.label is not None and len(args.label) != len(args.runs):
        raise CurvesError(
            f"{len(args.label)} --label for {len(args.runs)} runs; give one per run or none"
        )
    out = check_output(args.out, "figure", overwrite=args.overwrite, inputs=args.runs)
    runs = dict(zip(args.label, args.runs, strict=True)) if args.label else args.runs
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    fig = degradation_figure(
        runs, layout=args.layout, metric=args.metric, splits=splits, title=args.title
    )
    atomic_savefig(fig, out, dpi=args.dpi)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    exit_after(main())
