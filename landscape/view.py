"""``python -m landscape.view a.h5 [b.h5 ...] --out view.html [--open]``: the interactive viewer.

Writes one standalone HTML file (plotly.js inlined; it works offline and opens with a
double-click) showing the surfaces side by side; see `landscape.viz.viewer`. Files of the
original loss-landscape code are accepted too.

``landscape view a.h5 ... --live [--port N] [--interval S]`` writes no file: it serves the
page on 127.0.0.1 (see `landscape.viz.live`) and the page redraws as `landscape compute`
fills the files, with each file's time left, until every one is complete. Ctrl-C (or
SIGTERM) stops the server: one line, ``stopped``, and exit code 0, a normal end.
"""

from __future__ import annotations

import argparse
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from landscape.cli import options
from landscape.cli.options import add_overwrite_argument
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.errors import InputError
from landscape.core.files import check_output
from landscape.io.surfaces import read_surface
from landscape.io.trajectory import read_path
from landscape.viz.live import LiveServer, LiveView, wait_for_files
from landscape.viz.viewer import write_viewer

__all__ = ["build_parser", "main"]


PROG = "landscape view"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Interactive HTML viewer of surface files (standalone, works offline). "
        "With --live, the page is served on 127.0.0.1 instead and redraws as `landscape "
        "compute` fills the files: `landscape view s.h5 --live` beside a running compute.",
    )
    p.add_argument("files", nargs="+", metavar="FILE.h5", help="surface files to show")
    p.add_argument(
        "--out", help="the HTML file to write (default: beside the first file, FILE.html)"
    )
    p.add_argument("--title", default="Loss landscapes", help="page title")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.add_argument(
        "--live",
        action="store_true",
        help="write no file: serve the page on 127.0.0.1 and redraw it as `landscape compute` "
        "fills the files (with the time left) until all are complete; Ctrl-C stops",
    )
    p.add_argument(
        "--wait",
        type=options.finite_float,
        default=120.0,
        metavar="SECONDS",
        help="with --live: wait this long for files that do not exist yet (a compute started "
        "at the same time creates its file after loading the model and data)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        help="with --live: the port to serve on; 0 takes a free one (printed)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with --live: how often the page reads the files again, 0.2 to 3600 (2)",
    )
    p.add_argument(
        "--path",
        metavar="DIRS.h5",
        help="draw the training path of a `landscape trajectory` directions file on the contours",
    )
    add_overwrite_argument(p, "--out")
    return p


def _paths(args: argparse.Namespace) -> dict | None:
    if not args.path:
        return None
    trajectory = read_path(args.path)
    if trajectory is None:
        raise InputError(f"{args.path!r} holds no training path; use landscape trajectory")
    return {"training path": (trajectory[0], trajectory[1])}


def _serve(args: argparse.Namespace) -> int:
    if args.out:
        raise InputError("--live serves the page and writes no file; drop --out (or --live)")
    try:
        wait_for_files(
            args.files,
            timeout=args.wait,
            said=lambda missing: print(
                f"{PROG}: waiting up to {args.wait:g} s for {', '.join(missing)} to appear "
                "(Ctrl-C stops)",
                file=sys.stderr,
                flush=True,
            ),
        )
        view = LiveView(args.files, title=args.title, paths=_paths(args), interval=args.interval)
        with LiveServer(view, port=args.port) as server:
            print(f"serving {server.url} (Ctrl-C to stop)", flush=True)
            if args.open:
                webbrowser.open(server.url)
            server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the way a server ends, not a failure
        pass
    print(f"\n{PROG}: stopped", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.live:
        return _serve(args)
    out = Path(args.out) if args.out else Path(args.files[0]).with_suffix(".html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out must end in .html, got {out.name!r}")
    check_output(out, "html", overwrite=args.overwrite, inputs=[*args.files, args.path])
    surfaces = [read_surface(f) for f in args.files]
    # Each column shows its surface's metrics (write_viewer's default), so "chaotic vs
    # convex" is a number too.
    write_viewer(out, surfaces, title=args.title, paths=_paths(args))
    print(out)
    if args.open:
        webbrowser.open(out.resolve().as_uri())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input prints one line on stderr and returns 2."""
    return guarded(PROG, lambda: _run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    exit_after(main())
