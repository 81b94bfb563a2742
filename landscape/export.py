"""``landscape export FILE.h5 --vtk | --csv | --publish``: a surface for other tools.

``--vtk`` writes ``FILE_train_loss.vts`` (ParaView; ``--log`` and ``--clip Z`` as the
original code's ``h52vtp.py --log --zmax``), ``--csv`` one row per grid point,
``--publish`` a copy without the direction tensors, for sharing. Files of the
original loss-landscape code are accepted too. The writers are `landscape.io.export`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from landscape.cli import options
from landscape.cli.options import add_overwrite_argument
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.errors import InputError
from landscape.core.files import check_output
from landscape.io.export import write_csv, write_vtk
from landscape.io.legacy import LEGACY_EXPORT_FORMAT, write_legacy_surface
from landscape.io.surface_file import (
    SURFACE_FORMAT,
    StoreError,
    being_written,
    is_published_copy,
    read_surface_snapshot,
    replacing,
    write_without_directions,
)
from landscape.io.surfaces import read_surface

PROG = "landscape export"
log = logging.getLogger(__name__)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Export a surface file as a VTK structured grid (ParaView) or CSV.",
    )
    p.add_argument("file", metavar="FILE.h5", help="surface file")
    p.add_argument("--vtk", action="store_true", help="write a VTK XML structured grid (.vts)")
    p.add_argument("--csv", action="store_true", help="write a CSV table of every value")
    p.add_argument(
        "--legacy",
        action="store_true",
        help="write the original loss-landscape code's layout (xcoordinates, train_loss, "
        "train_acc in percent) for its plot_2D.py / h52vtp.py",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="write an HDF5 copy without the direction tensors (most of the size): landscape "
        "regenerates them from the stored checkpoint and seed, checked by directions_sha256",
    )
    p.add_argument("--out", help="output file (default: beside FILE, .vts / .csv)")
    p.add_argument("--split", default="train", help="VTK: split whose values are z")
    p.add_argument(
        "--metric", default="loss", choices=("loss", "accuracy", "error"), help="VTK: z metric"
    )
    p.add_argument(
        "--log", action="store_true", help="VTK: z = ln(value + 0.1), as h52vtp.py --log"
    )
    p.add_argument(
        "--clip", type=options.positive_float, help="VTK: clamp values above CLIP (before --log)"
    )
    add_overwrite_argument(p, "the output file")
    return p


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    formats = [f for f in ("vtk", "csv", "publish", "legacy") if getattr(args, f)]
    if not formats and out is not None and out.suffix.lower() in (".vts", ".csv"):
        formats = ["vtk" if out.suffix.lower() == ".vts" else "csv"]
    if not formats:
        raise InputError(
            "choose a format: --vtk (ParaView .vts), --csv, --publish or --legacy (.h5)"
        )
    if out is not None and len(formats) > 1:
        raise InputError("--out names one file; export one format at a time")
    if {"publish", "legacy"} & set(formats) and out is not None:
        if out.suffix.lower() not in (".h5", ".hdf5"):
            raise InputError(f"--{formats[0]} writes HDF5: --out must end in .h5; got {str(out)!r}")
    src = Path(args.file)
    if being_written(src):  # a compute fills it now
        if "publish" in formats:
            raise StoreError(
                f"{str(src)!r} is being written by another process; wait for it to finish, "
                "then publish the finished file"
            )
        surface = read_surface_snapshot(src)  # the points finished so far, each one whole
        log.warning(
            "%s is being written by another process: exporting the %d of %d points finished so far",
            src,
            int(surface.computed.sum()),
            surface.computed.size,
        )
    else:
        surface = read_surface(src)
    dests = {
        "vtk": out or src.with_name(f"{src.stem}_{args.split}_{args.metric}.vts"),
        "csv": out or src.with_suffix(".csv"),
        "publish": out or src.with_name(f"{src.stem}_published.h5"),
        "legacy": out or src.with_name(f"{src.stem}_loss_landscape.h5"),
    }
    kinds = {"vtk": "vtk", "csv": "csv", "publish": SURFACE_FORMAT, "legacy": LEGACY_EXPORT_FORMAT}
    for fmt in formats:  # every output checked before anything is written
        # A surface file is replaced unasked only by a new copy of the same source
        # (`is_published_copy`: no point it holds is lost), never another surface.
        same = (lambda p: is_published_copy(p, src)) if fmt == "publish" else None
        check_output(dests[fmt], kinds[fmt], overwrite=args.overwrite, inputs=[src], same_job=same)
    for fmt in formats:
        if fmt == "publish":  # takes the writers' locks of `src` and of its output itself
            dest = write_without_directions(src, dests[fmt])
            print(dest)
            continue
        # Never replaced while a compute writes it (even with --overwrite): it would lose
        # every point since.
        with replacing(dests[fmt], "wait for it to finish, or choose another --out"):
            if fmt == "vtk":
                opts = {"split": args.split, "metric": args.metric, "log": args.log}
                dest = write_vtk(surface, dests[fmt], **opts, clip=args.clip)
            elif fmt == "csv":
                dest = write_csv(surface, dests[fmt])
            else:
                dest = write_legacy_surface(surface, dests[fmt])
        print(dest)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input prints one line on stderr and returns 2."""
    return guarded(PROG, lambda: _run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    exit_after(main())
