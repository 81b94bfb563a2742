"""`python -m landscape.models [PATTERN]`: a table of every registered network.

Exit codes: 0 done; 2 bad input (no network matches the pattern, or an unknown option).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .registry import list_models
from .summary import models_table

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, prog: str = "landscape models") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A table of the networks: block, depth, skip connections, parameters "
        "and MACs of one image.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="a shell pattern (resnet5*) or part of a name (resnet); default: every network",
    )
    args = parser.parse_args(argv)
    pattern = args.pattern if any(c in args.pattern for c in "*?[") else f"*{args.pattern}*"
    if not list_models(pattern):
        print(
            f"{prog}: error: no network matches {args.pattern!r}; try {prog} to list them all",
            file=sys.stderr,
        )
        return 2
    try:
        print(models_table(pattern), flush=True)
    except BrokenPipeError:  # a reader that left (| head): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
