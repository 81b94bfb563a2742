"""``python -m landscape.view a.h5 [b.h5 ...] --out view.html [--open]``: the interactive viewer.

Writes one standalone HTML file (plotly.js inlined; it works offline and opens with a
double-click) showing the surfaces side by side; see `landscape.viz.viewer`. Files of the
original loss-landscape code are accepted too.
"""

from __future__ import annotations

import argparse
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from landscape.analysis.trajectory import read_path
from landscape.cli.options import add_overwrite_argument
from landscape.cli.runner import ArgumentParser, guarded
from landscape.core.errors import InputError
from landscape.core.files import check_output
from landscape.io.legacy import load_any_surface
from landscape.viz.viewer import metrics_by_name, write_viewer

__all__ = ["build_parser", "main"]


PROG = "landscape view"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Interactive HTML viewer of surface files (standalone, works offline).",
    )
    p.add_argument("files", nargs="+", metavar="FILE.h5", help="surface files to show")
    p.add_argument(
        "--out", help="the HTML file to write (default: beside the first file, FILE.html)"
    )
    p.add_argument("--title", default="Loss landscapes", help="page title")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.add_argument(
        "--path",
        metavar="DIRS.h5",
        help="draw the training path of a `landscape trajectory` directions file on the contours",
    )
    add_overwrite_argument(p, "--out")
    return p


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.files[0]).with_suffix(".html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out must end in .html, got {out.name!r}")
    check_output(out, "html", overwrite=args.overwrite, inputs=[*args.files, args.path])
    surfaces = [load_any_surface(f) for f in args.files]
    # Each column shows its surface's metrics, so "chaotic vs convex" is a number too.
    metrics = metrics_by_name(surfaces)
    paths = None
    if args.path:
        trajectory = read_path(args.path)
        if trajectory is None:
            raise InputError(f"{args.path!r} holds no training path; use landscape trajectory")
        paths = {"training path": (trajectory[0], trajectory[1])}
    write_viewer(out, surfaces, title=args.title, metrics=metrics, paths=paths)
    print(out)
    if args.open:
        webbrowser.open(out.resolve().as_uri())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input prints one line on stderr and returns 2."""
    return guarded(PROG, lambda: _run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
