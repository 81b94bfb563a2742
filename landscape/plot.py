"""``python -m landscape.plot FILE.h5 [FILE.h5 ...]``: static figures as PNG, PDF or SVG.

One 2-D file gives one panel; several give side-by-side panels with one shared colour
scale and shared levels. 1-D files give curves overlaid on one Axes, the loss on the left
and the accuracy (or error) on a twin axis. Files of the original loss-landscape code are
accepted too. Examples::

    python -m landscape.plot out/resnet56.h5 --kind contour --levels 20
    python -m landscape.plot out/resnet56.h5 out/plain56.h5 --kind surface --log --out cmp.pdf
    python -m landscape.plot out/line.h5 --split train,test --out line.svg
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from landscape.cli import options
from landscape.cli.options import add_overwrite_argument
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.errors import InputError
from landscape.core.files import atomic_savefig, check_output
from landscape.io.surfaces import read_surface
from landscape.io.trajectory import read_path
from landscape.viz import figures
from landscape.viz.levels import LEVEL_PRESETS
from landscape.viz.style import STYLES

__all__ = ["build_parser", "main"]

FORMATS = (".png", ".pdf", ".svg")
PLOT_METRICS = ("loss", "accuracy", "error")


PROG = "landscape plot"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Static figures of surface files: contour, filled contour, heatmap, "
        "3-D surface (2-D files) or curves (1-D files).",
    )
    p.add_argument("files", nargs="+", metavar="FILE.h5", help="surface files (same dimension)")
    p.add_argument(
        "--kind",
        choices=(*figures.KINDS, "1d"),
        help="figure kind (default: contour for 2-D files, 1d for 1-D files)",
    )
    p.add_argument("--split", default="train", help="train | test (1-D: a list, train,test)")
    p.add_argument("--metric", default="loss", choices=PLOT_METRICS, help="value to plot")
    p.add_argument(
        "--twin",
        default="auto",
        choices=("auto", "loss", "accuracy", "error", "none"),
        help="1-D: metric on the right axis (auto: accuracy next to loss, else loss)",
    )
    p.add_argument(
        "--log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log colour scale and levels (default: decided from the data)",
    )
    p.add_argument(
        "--vmin", type=options.finite_float, help="lowest value of the colour scale / levels"
    )
    p.add_argument(
        "--vmax", type=options.finite_float, help="highest value (3-D: higher values are clipped)"
    )
    p.add_argument(
        "--levels",
        help="number of contour levels (e.g. 20), the levels (0.5,1,2), or li2018 "
        "(Li et al.'s 0.1 to 10 in steps of 0.5)",
    )
    p.add_argument(
        "--style",
        choices=sorted(STYLES),
        default="default",
        help="li2018: Li et al.'s look (their levels 0.1..9.6, coolwarm 3-D clipped at 10, "
        "1-D loss on 0..5 beside accuracy); --levels, --vmin, --vmax override it",
    )
    p.add_argument("--no-optimum", action="store_true", help="do not mark theta* at (0, 0)")
    p.add_argument("--title", help="figure title (default: none for one file)")
    p.add_argument(
        "--path",
        metavar="DIRS.h5",
        help="2-D: draw the training path stored in a `landscape trajectory` directions file",
    )
    p.add_argument("--dpi", type=options.dpi, default=150, help="resolution of PNG output")
    p.add_argument(
        "--out",
        help="output file, .png .pdf or .svg "
        "(default: beside the first file, named after split, metric, kind and style)",
    )
    add_overwrite_argument(p, "--out")
    return p


def _parse_levels(text: str | None) -> int | list[float] | None:
    if text is None:
        return None
    if text in LEVEL_PRESETS:
        return text
    try:
        if "," not in text:
            return int(text)
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(
            f"--levels takes a count, comma-separated values or "
            f"{', '.join(LEVEL_PRESETS)}, got {text!r}; e.g. --levels 20"
        ) from None


def _default_out(files: list[str], tag: str) -> Path:
    stems = [Path(f).stem for f in files]
    return Path(files[0]).with_name(f"{'_vs_'.join(stems)}_{tag}.png")


def _run(args: argparse.Namespace) -> int:
    surfaces = [read_surface(f) for f in args.files]
    kind = args.kind or ("contour" if surfaces[0].is_2d else "1d")
    tag = f"{args.split.replace(',', '+')}_{args.metric}_{kind}"
    if args.style != "default":  # the default figure must not replace the styled one
        tag += f"_{args.style}"
    out = Path(args.out) if args.out else _default_out(args.files, tag)
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"--out must end in {', '.join(FORMATS)}, got {out.name!r}")
    check_output(out, "figure", overwrite=args.overwrite, inputs=[*args.files, args.path])
    if args.path and not all(s.is_2d for s in surfaces):
        raise InputError("--path draws a training path on 2-D contours; drop it for 1-D files")
    path = read_path(args.path) if args.path else None
    if args.path and path is None:
        raise InputError(f"{args.path!r} holds no training path; make it with landscape trajectory")
    fig = figures.surface_figure(
        surfaces,
        kind=args.kind,
        split=args.split,
        metric=args.metric,
        twin=args.twin,
        log=args.log,
        vmin=args.vmin,
        vmax=args.vmax,
        levels=_parse_levels(args.levels),
        optimum=not args.no_optimum,
        title=args.title,
        path=path,
        style=args.style,
    )
    atomic_savefig(fig, out, dpi=args.dpi)
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input prints one line on stderr and returns 2."""
    return guarded(PROG, lambda: _run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    exit_after(main())
