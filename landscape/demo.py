"""``make demo``: skip vs no-skip, end to end, on the embedded CIFAR-10 subset.

Computes 2-D and 1-D filter-normalized surfaces of the shipped 56-layer residual and
plain networks (``pretrained:resnet56``, ``pretrained:plain56``: the depth where Li et
al. 2018 see the difference; ``--depth 20`` for the 20-layer pair, which is alike), then
writes into one folder: the side-by-side contour and 3-D comparisons on a shared scale,
the 1-D slices, the metrics with 95% intervals, the paired differences (both networks
are evaluated on the same images: each difference is bootstrapped with the same
resampled images on both sides) with a verdict per metric, and the interactive viewer
page. On a CPU the grid and sample count fit a few minutes on 2 cores (15x15 points on
200 images); on a GPU they are larger. Interrupting and running again resumes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from landscape.analysis.metrics import metrics_table, surface_metrics
from landscape.analysis.uncertainty import comparison_lines, intervals_table, measure
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.device import resolve_device
from landscape.core.errors import InputError
from landscape.core.files import atomic_savefig, atomic_write_text, make_parent
from landscape.data import DEFAULT_DATASET
from landscape.io.surfaces import read_surface
from landscape.surface.config import SurfaceConfig
from landscape.surface.engine import run
from landscape.viz.figures import surface_figure
from landscape.viz.viewer import metrics_by_name, write_viewer

__all__ = ["main"]

PROG = "landscape demo"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_out", help="output folder (demo_out)")
    p.add_argument(
        "--depth",
        type=int,
        choices=(20, 56),
        default=56,
        help="the shipped pair to compare: resnet56 vs plain56, or resnet20 vs plain20",
    )
    p.add_argument(
        "--ckpt",
        nargs="+",
        default=None,
        help="checkpoints to compare instead of the shipped pair",
    )
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="data (the embedded subset)")
    p.add_argument(
        "--grid",
        type=int,
        default=None,
        help="points per axis of the 2-D grid (15 on CPU, 25 on GPU)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="training images evaluated (200 on CPU, all 5,000 on GPU)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _stem(ckpt: str) -> str:
    return Path(ckpt.split(":", 1)[-1]).stem


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    gpu = resolve_device(args.device).type == "cuda"
    if args.grid is not None and args.grid < 3:
        raise InputError(f"--grid must be at least 3; got {args.grid}")
    if args.samples is not None and args.samples < 1:
        raise InputError(f"--samples must be a positive integer; got {args.samples}")
    grid = args.grid if args.grid is not None else (25 if gpu else 15)
    samples = args.samples if args.samples is not None else (None if gpu else 200)
    ckpts = args.ckpt or [f"pretrained:resnet{args.depth}", f"pretrained:plain{args.depth}"]
    print(
        f"demo: {' vs '.join(_stem(c) for c in ckpts)} on {samples or 'all'} {args.dataset} "
        f"training images, {grid}x{grid} grid ({'GPU' if gpu else 'CPU'} defaults; "
        "--grid/--samples change them)"
    )
    make_parent(out / "view.html")
    files_2d, files_1d, rows = [], [], []
    for ckpt in ckpts:
        common = dict(ckpt=ckpt, dataset=args.dataset, samples=samples, device=args.device)
        print(f"[{_stem(ckpt)}] 2-D surface, {grid}x{grid} points, filter-normalized directions")
        surface = run(
            SurfaceConfig(x=f"-1:1:{grid}", y=f"-1:1:{grid}", **common),
            out / f"{_stem(ckpt)}_2d.h5",
            progress=not args.quiet,
        )
        files_2d.append(str(surface.path))
        rows.append((surface.label, surface_metrics(surface)))
        print(f"[{_stem(ckpt)}] 1-D slice, {2 * grid - 1} points")
        line = run(
            SurfaceConfig(x=f"-1:1:{2 * grid - 1}", split=("train", "test"), **common),
            out / f"{_stem(ckpt)}_1d.h5",
            progress=not args.quiet,
        )
        files_1d.append(str(line.path))

    surfaces_2d = [read_surface(f) for f in files_2d]
    surfaces_1d = [read_surface(f) for f in files_1d]
    # The demo owns its folder: its figures and page replace earlier ones.
    for name, options in {
        "compare_contour.png": dict(kind="contour", log=True),
        # Li et al. 2018's level set (0.1 to 10 in steps of 0.5), to set beside their Fig. 5.
        "compare_contour_li2018.png": dict(kind="contour", levels="li2018"),
        "compare_3d.png": dict(kind="surface"),
        "compare_filled.png": dict(kind="contourf"),
    }.items():
        atomic_savefig(surface_figure(surfaces_2d, **options), out / name, dpi=150)
    atomic_savefig(surface_figure(surfaces_1d, split="train,test"), out / "slices_1d.png", dpi=150)
    # Intervals from the per-sample losses the demo's files keep: is a difference real?
    # Both networks saw the same images, so the comparison is paired.
    measured = measure(surfaces_2d)
    table = "\n\n".join(
        [
            metrics_table(rows),
            "95% intervals:\n" + intervals_table(measured),
            "comparisons:\n" + "\n".join(comparison_lines(measured)),
        ]
    )
    atomic_write_text(out / "metrics.txt", table + "\n")
    write_viewer(
        out / "view.html",
        [*surfaces_2d, *surfaces_1d],
        title="Skip vs no-skip",
        metrics=metrics_by_name([*surfaces_2d, *surfaces_1d]),
    )

    print("\nSurface metrics (train loss):\n" + table)
    print(f"\nEverything is in {out}/ - open {out / 'view.html'} first (interactive, offline),")
    print(f"then {out / 'compare_3d.png'} and {out / 'compare_contour.png'}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(
        PROG,
        lambda: _run(build_parser().parse_args(argv)),
        kept="the surfaces computed so far are kept - rerun the same command to resume",
    )


if __name__ == "__main__":
    exit_after(main())
