"""What every command line shares: exit codes and one-line errors."""

from __future__ import annotations

import argparse
import errno
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
    "os_error_message",
]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# Bad input surfaces as ValueError (DataError, StoreError, CheckpointError derive
# from it) or as an OS error about a path or the disk; anything else is a bug and
# keeps its traceback.
_NEGATIVE_VALUE = re.compile(r"^-\.?\d")
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", 122))
_DISK_FULL_TEXT = re.compile(r"errno = (28|27|122)\b|No space left|File too large|quota", re.I)


def os_error_message(e: OSError) -> str:
    """One line for an OS error: the path, the reason, and what to do about it."""
    reason = e.strerror or str(e) or type(e).__name__
    where = f" {str(e.filename)!r}" if e.filename is not None else ""
    if e.errno in _DISK_FULL or _DISK_FULL_TEXT.search(str(e)):
        return (
            f"cannot write{where}: {reason} (disk full or file-size limit); free some space, "
            "then rerun the same command - finished work is kept"
        )
    if isinstance(e, FileNotFoundError):
        return f"{where.strip() or 'a file'} does not exist ({reason}); check the path"
    if isinstance(e, PermissionError) or e.errno == errno.EROFS:
        return f"cannot write{where}: {reason}; choose a place you may write to"
    return f"cannot write{where}: {reason}; check the path"


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
    except ValueError as e:
        return bad_input(prog, str(e) or type(e).__name__)
    except OSError as e:
        return bad_input(prog, os_error_message(e))


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
