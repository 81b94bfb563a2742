"""Signals before a command's own handlers exist, and after its result: for a program.

A command takes seconds to load (torch, the model) before `landscape.cli.runner.guarded`
installs its handlers; a Ctrl-C there printed a traceback and a SIGTERM killed it without a
word. Nothing is written before the command starts, so `stop_before_start` ends the process
at once with one line and exit code 130. Once the command has its result,
`landscape.cli.runner.exit_after` ignores both signals to the end, so the interpreter's
teardown cannot turn a finished run into one killed by a signal.

This module imports only the standard library: it runs before anything heavy is loaded.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["install", "started_as_command", "stop_before_start"]


def stop_before_start(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM while the command loads: one line, exit 130, nothing to clean."""
    name = "interrupted" if signum == signal.SIGINT else "stopped"
    os.write(2, f"landscape: {name} while loading; nothing was written\n".encode())
    os._exit(130)


def install() -> None:
    """`stop_before_start` for SIGINT and SIGTERM (the main thread of a program only)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_before_start)


def started_as_command() -> bool:
    """Whether this interpreter was started as ``python -m landscape[.COMMAND]`` (the
    console script installs the handlers itself, in `landscape.__main__.run`)."""
    argv = list(getattr(sys, "orig_argv", []))
    if "-m" not in argv[:-1]:
        return False
    return argv[argv.index("-m") + 1].split(".")[0] == "landscape"
