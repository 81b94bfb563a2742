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
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from landscape import cliutil, figures
from landscape.cliutil import ArgumentParser, add_overwrite_argument, guarded
from landscape.fileio import atomic_savefig, check_output
from landscape.legacy import load_any_surface
from landscape.store import Surface
from landscape.trajectory import read_path

from .errors import InputError

__all__ = ["build_parser", "main", "make_figure"]

FORMATS = (".png", ".pdf", ".svg")
METRICS = ("loss", "accuracy", "error")


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
    p.add_argument("--metric", default="loss", choices=METRICS, help="value to plot")
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
        "--vmin", type=cliutil.finite_float, help="lowest value of the colour scale / levels"
    )
    p.add_argument(
        "--vmax", type=cliutil.finite_float, help="highest value (3-D: higher values are clipped)"
    )
    p.add_argument("--levels", help="number of contour levels (e.g. 20) or the levels (0.5,1,2)")
    p.add_argument("--no-optimum", action="store_true", help="do not mark theta* at (0, 0)")
    p.add_argument("--title", help="figure title (default: none for one file)")
    p.add_argument(
        "--path",
        metavar="DIRS.h5",
        help="2-D: draw the training path stored in a `landscape trajectory` directions file",
    )
    p.add_argument("--dpi", type=cliutil.dpi, default=150, help="resolution of PNG output")
    p.add_argument(
        "--out",
        help="output file, .png .pdf or .svg "
        "(default: beside the first file, named after split, metric and kind)",
    )
    add_overwrite_argument(p, "--out")
    return p


def _parse_levels(text: str | None) -> int | list[float] | None:
    if text is None:
        return None
    try:
        if "," not in text:
            return int(text)
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(
            f"--levels takes a count or comma-separated values, got {text!r}; e.g. --levels 20"
        ) from None


def _default_out(files: list[str], tag: str) -> Path:
    stems = [Path(f).stem for f in files]
    return Path(files[0]).with_name(f"{'_vs_'.join(stems)}_{tag}.png")


def _figure_2d(surfaces: list[Surface], args: argparse.Namespace, kind: str) -> Figure:
    splits = args.split.split(",")
    if len(splits) != 1:
        raise InputError("2-D figures show one split; pass --split train or --split test")
    split = splits[0]
    arrays = [figures.surface_values(s, split, args.metric) for s in surfaces]
    scale = figures.resolve_scale(
        arrays,
        vmin=args.vmin,
        vmax=args.vmax,
        levels=_parse_levels(args.levels),
        log=args.log,
    )
    n = len(surfaces)
    fig = Figure(figsize=(4.8 * n + 1.2, 4.4), layout="constrained")
    axes = [
        fig.add_subplot(1, n, k + 1, projection="3d" if kind == "surface" else None)
        for k in range(n)
    ]
    artists = figures.plot_comparison(
        axes,
        surfaces,
        kind=kind,
        split=split,
        metric=args.metric,
        vmin=scale.vmin,
        vmax=scale.vmax,
        levels=scale.levels,
        log=scale.log,
    )
    label = figures.metric_label(split, args.metric, log=scale.log and kind == "surface")
    fig.colorbar(artists[0], ax=axes, label=label, shrink=0.85)
    trajectory = read_path(args.path) if args.path else None
    if args.path and trajectory is None:
        raise InputError(f"{args.path!r} holds no training path; make it with landscape trajectory")
    if trajectory is not None and kind != "surface":
        for ax in axes:
            figures.plot_path(ax, trajectory[0], trajectory[1], label="training path")
    if not args.no_optimum:
        for ax, s in zip(axes, surfaces, strict=True):
            if kind != "surface":
                figures.mark_optimum(ax)
                continue
            z = figures.origin_value(s, split=split, metric=args.metric)
            if np.isfinite(z):
                z = float(np.clip(z, scale.vmin, scale.vmax))
                figures.mark_optimum(ax, z=float(np.log10(z)) if scale.log else z)
    if args.title:
        fig.suptitle(args.title)
    return fig


def _figure_1d(surfaces: list[Surface], args: argparse.Namespace) -> Figure:
    if args.path:
        raise InputError("--path draws a training path on 2-D contours; drop it for 1-D files")
    splits = args.split.split(",")
    twin = args.twin
    if twin == "auto":
        twin = "accuracy" if args.metric == "loss" else "loss"
        need = "accuracy" if twin in ("accuracy", "error") else "loss"
        missing = [s for s in surfaces for sp in splits if f"{sp}_{need}" not in s.values]
        if missing:
            print(
                f"note: {missing[0].label!r} has no {need}; plotting {args.metric} only",
                file=sys.stderr,
            )
            twin = None
    elif twin == "none":
        twin = None
    arrays = [figures.surface_values(s, sp, args.metric) for s in surfaces for sp in splits]
    log = figures.resolve_scale(arrays, log=args.log).log
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    figures.plot_1d(ax, surfaces, splits=splits, metric=args.metric, twin=twin, log=log)
    if args.vmin is not None or args.vmax is not None:
        ax.set_ylim(args.vmin, args.vmax)
    if not args.no_optimum:
        ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":", zorder=0)
    ax.set_title(args.title or figures.escape_text(" vs ".join(figures.display_names(surfaces))))
    return fig


def make_figure(surfaces: list[Surface], args: argparse.Namespace) -> Figure:
    """The figure that the parsed command line `args` asks for (not saved)."""
    dims = {s.is_2d for s in surfaces}
    if len(dims) > 1:
        raise InputError("the files mix 1-D and 2-D surfaces; plot them separately")
    is_2d = dims.pop()
    kind = args.kind or ("contour" if is_2d else "1d")
    if is_2d and kind == "1d":
        raise InputError(f"--kind 1d needs 1-D files; use one of {', '.join(figures.KINDS)}")
    if not is_2d and kind != "1d":
        raise InputError(f"the files are 1-D surfaces; --kind {kind} needs 2-D ones, use --kind 1d")
    return _figure_2d(surfaces, args, kind) if is_2d else _figure_1d(surfaces, args)


def _run(args: argparse.Namespace) -> int:
    surfaces = [load_any_surface(f) for f in args.files]
    kind = args.kind or ("contour" if surfaces[0].is_2d else "1d")
    tag = f"{args.split.replace(',', '+')}_{args.metric}_{kind}"
    out = Path(args.out) if args.out else _default_out(args.files, tag)
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"--out must end in {', '.join(FORMATS)}, got {out.name!r}")
    check_output(out, "figure", overwrite=args.overwrite, inputs=[*args.files, args.path])
    fig = make_figure(surfaces, args)
    atomic_savefig(fig, out, dpi=args.dpi)
    print(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input prints one line on stderr and returns 2."""
    return guarded(PROG, lambda: _run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
