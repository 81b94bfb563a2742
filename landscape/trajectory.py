"""``landscape trajectory``: PCA directions of a training path (Li et al. 2018, Sec. 7).

    landscape trajectory runs/resnet20 --out dirs.h5
    landscape compute --ckpt runs/resnet20/final.pt --directions dirs.h5 --norm none \\
        --x -A:B:51 --y -C:D:51 --out path_surface.h5
    landscape trajectory runs/resnet20 --out dirs.h5 --surface path_surface.h5

The two principal directions of ``theta_i - theta_final`` over a run's checkpoints span
the plane that best holds the path; each checkpoint's coordinates are its projection on
it, and its off-plane distance says how faithful that drawing is. With ``--norm none``
the surface's alpha, beta are in the same units as the path.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landscape.analysis import trajectory as traj_lib
from landscape.analysis.trajectory import OFF_PLANE_WARN
from landscape.cli import options
from landscape.cli.options import FIGURE_FORMATS, add_overwrite_argument, check_suffix
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.errors import InputError
from landscape.core.files import atomic_savefig, check_output
from landscape.io.surface_file import DIRECTIONS_FORMAT, StoreError
from landscape.io.surfaces import read_surface
from landscape.io.trajectory import write_directions
from landscape.surface.direction_policy import surface_directions
from landscape.viz.analysis_figures import trajectory_figure

__all__ = ["build_parser", "main"]

PROG = "landscape trajectory"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="PCA directions of a training trajectory, saved as a directions file for "
        "landscape compute --directions FILE --norm none (Li et al. 2018, Sec. 7).",
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="RUN_DIR_OR_CKPTS",
        help="a run folder (epoch_000.pt ... final.pt) or checkpoint files; the last is theta*",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="the directions file (.h5)")
    p.add_argument(
        "--center",
        action="store_true",
        help="center the checkpoints first (scikit-learn's PCA, as Li et al.'s code)",
    )
    p.add_argument(
        "--ignore",
        default="biasbn",
        choices=("biasbn", "none"),
        help="biasbn: biases and BN weights stay out of the PCA (default)",
    )
    p.add_argument(
        "--surface",
        metavar="FILE.h5",
        help="draw the path on the contours of a 2-D surface computed with these directions",
    )
    p.add_argument("--split", default="train", help="the surface's split to draw (train)")
    p.add_argument(
        "--figure", metavar="PATH", help="the figure (default: --out with a .png suffix)"
    )
    p.add_argument("--dpi", type=options.dpi, default=150, help="resolution of PNG figures")
    add_overwrite_argument(p, "--out and --figure")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(PROG, lambda: _main(build_parser().parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    out = check_suffix(args.out, (".h5", ".hdf5"), "--out")
    figure = check_suffix(args.figure or out.with_suffix(".png"), FIGURE_FORMATS, "--figure")
    inputs = [*args.sources, args.surface]
    from landscape.surface.direction_policy import directions_made_by

    check_output(
        out,
        DIRECTIONS_FORMAT,
        overwrite=args.overwrite,
        inputs=inputs,
        same_job=lambda p: directions_made_by(p) == "trajectory_pca",  # not eigendirs'
    )
    check_output(figure, "figure", overwrite=args.overwrite, inputs=inputs, flag="--figure")
    if not re.fullmatch(r"\w+", args.split):
        raise InputError(f"--split must name a split, such as train or test; got {args.split!r}")
    surface = read_surface(args.surface) if args.surface else None
    if surface is not None and not surface.is_2d:
        raise StoreError(f"{args.surface!r} is a 1-D surface; draw the path on a 2-D one")
    if surface is not None and args.split not in surface.splits:
        raise InputError(
            f"--split {args.split!r}: {args.surface!r} has the splits "
            f"{', '.join(surface.splits) or 'none'}; choose one of them"
        )
    # One folder is a run; anything else is a list of checkpoint files (one file is
    # then refused by the library as too short a trajectory).
    one_dir = len(args.sources) == 1 and not Path(args.sources[0]).is_file()
    source = args.sources[0] if one_dir else args.sources
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the far-off-plane epochs are reported below
        result = traj_lib.trajectory_pca(source, center=args.center, ignore=args.ignore)
    if surface is not None:
        _check_same_directions(args.surface, result.directions)
    write_directions(out, result)
    paths = result.sources
    title = paths[-1].parent.name or "trajectory"
    fig = trajectory_figure(result, surface, split=args.split, title=title)
    atomic_savefig(fig, figure, dpi=args.dpi)

    ev = result.explained_variance_ratio
    print(
        f"explained variance: x {ev[0]:.1%}, y {ev[1]:.1%} (together {ev.sum():.1%}); "
        f"{len(paths)} checkpoints, {len(result.names)} tensors in the PCA"
    )
    print(f"{'epoch':>6} {'alpha':>11} {'beta':>11} {'off-plane':>11} {'distance':>11}  file")
    for i, path in enumerate(paths):
        a, b = result.coords[i] + 0.0  # no "-0"
        print(
            f"{result.epochs[i]:>6} {a:>11.4g} {b:>11.4g} {result.off_plane_distance[i]:>11.4g} "
            f"{result.distance[i]:>11.4g}  {path.name}"
        )
    far = result.far_off_plane(OFF_PLANE_WARN)
    if far:
        print(
            f"{PROG}: warning: epochs {', '.join(map(str, far))} lie far off the plane "
            f"(off-plane distance > {OFF_PLANE_WARN:.0%} of their distance to the final "
            "weights): the drawn path is only a shadow of the real one",
            file=sys.stderr,
        )
    print(f"wrote {out} and {figure}")
    if surface is None:
        print("next:")
        x, y = traj_lib.path_grid(result.coords)
        print(
            f"  landscape compute --ckpt {paths[-1]} --directions {out} --norm none "
            f"--x {x} --y {y} --out {out.with_name(out.stem + '_surface.h5')}"
        )
    return 0


def _check_same_directions(surface: str, directions: dict) -> None:
    stored = surface_directions(surface)
    for axis in ("x", "y"):
        mine = directions[axis]
        theirs = stored.get(axis, {})
        same = set(mine) == set(theirs) and all(
            np.allclose(theirs[n].numpy(), mine[n].numpy(), rtol=1e-4, atol=1e-6) for n in mine
        )
        if not same:
            raise StoreError(
                f"{surface!r} was not computed with these PCA directions; compute it with "
                "--directions on this --out (and --norm none)"
            )


if __name__ == "__main__":
    exit_after(main())
