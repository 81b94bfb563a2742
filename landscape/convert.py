"""``landscape convert OLD.h5 --out NEW.h5``: a surface file of the original
loss-landscape code (``xcoordinates``, ``train_loss``, ``train_acc``) as a landscape file.

Every command reads the original files directly too (`landscape.io.legacy`); converting
adds the settings, provenance and format the other tools record. A rerun replaces only
its own earlier conversion of the same source.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from landscape.cli.options import add_overwrite_argument
from landscape.cli.runner import ArgumentParser, exit_after, guarded
from landscape.core.files import check_output
from landscape.io.legacy import convert_legacy
from landscape.io.surface_file import (
    SURFACE_FORMAT,
    StoreError,
    read_surface,
)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="landscape convert",
        description="Convert a surface file of the original loss-landscape code "
        "(xcoordinates, train_loss, train_acc) into a landscape surface file.",
    )
    parser.add_argument("file", help="surface file written by the original code")
    parser.add_argument("--out", required=True, help="the new landscape surface file (.h5)")
    add_overwrite_argument(parser, "--out")
    # The name of earlier versions, kept working.
    parser.add_argument("--force", dest="overwrite", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_args(argv)
        source = str(Path(args.file).resolve())

        def same_source(path: Path) -> bool:  # a rerun of this very conversion
            try:
                return read_surface(path).provenance.get("converted_from") == source
            except StoreError:
                return False

        check_output(
            args.out,
            SURFACE_FORMAT,
            overwrite=args.overwrite,
            inputs=[args.file],
            same_job=same_source,
        )
        print(convert_legacy(args.file, args.out))
        return 0

    return guarded("landscape convert", run)


if __name__ == "__main__":
    exit_after(main())
