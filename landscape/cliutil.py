"""What every command line shares: exit codes and one-line errors."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = [
    "ArgumentParser",
    "UsageError",
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "bad_input",
    "guarded",
]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# Bad input surfaces as ValueError (DataError, StoreError, CheckpointError derive
# from it) or as an OS error about a path; anything else is a bug and keeps its traceback.
_NEGATIVE_VALUE = re.compile(r"^-\.?\d")
_BAD_INPUT = (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def bad_input(prog: str, message: str) -> int:
    """Print one line naming the problem and the fix; return exit code 2."""
    first = " ".join(str(message).split())
    print(f"{prog}: error: {first}", file=sys.stderr)
    return EXIT_BAD_INPUT


def guarded(prog: str, fn: Callable[[], int]) -> int:
    """Run a command body: bad input -> 2 and one line; Ctrl-C -> 130."""
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(message)s")
    try:
        return fn()
    except KeyboardInterrupt:
        print(
            f"\n{prog}: interrupted; everything computed so far is saved - "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except _BAD_INPUT as e:
        return bad_input(prog, str(e) or type(e).__name__)


class UsageError(ValueError):
    """A command-line usage error; `guarded` prints it on one line and returns 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit code 2, as every bad input).

    A value starting with a minus sign (``--x -1:1:51``, ``--vmin -2``) is taken as
    the value of the option before it, as users expect, instead of as an option.
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        args = list(sys.argv[1:] if args is None else args)
        merged: list[str] = []
        for token in args:
            prev = merged[-1] if merged else ""
            if _NEGATIVE_VALUE.match(token) and prev.startswith("--") and "=" not in prev:
                merged[-1] = f"{prev}={token}"
            else:
                merged.append(token)
        return super().parse_known_args(merged, namespace)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")
