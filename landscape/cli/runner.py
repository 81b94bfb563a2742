"""How every command runs: exit codes, one-line errors, interruptions, argument parsing.

A command's ``main(argv)`` is ``guarded(prog, body)``: bad input (`InputError`,
`models.ModelError`, an OS error about a path or the disk) exits 2 with one line, Ctrl-C
or SIGTERM exits 130 saying what was kept, and anything else is a bug with its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import io
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from landscape.core.errors import InputError, os_error_message
from landscape.models import ModelError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BUG",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "NOTHING_WRITTEN",
    "RESUMABLE",
    "ArgumentParser",
    "HelpFormatter",
    "ORIGINAL_FLAGS",
    "UsageError",
    "bad_input",
    "exit_after",
    "reader_left",
    "guarded",
    "terminate_as_interrupt",
]

EXIT_OK = 0
EXIT_BUG = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that left
_NEGATIVE_VALUE = re.compile(r"^-(\.?\d|inf|nan)", re.I)
# Flags of the original loss-landscape code (plot_surface.py, plot_2D.py, h52vtp.py) and
# what says the same here, so a pasted command gets one line that translates it.
ORIGINAL_FLAGS = {
    "--model_file": "--ckpt",
    "--model_file2": "--ckpt2",
    "--model_file3": "--ckpt3",
    "--xnorm": "--norm",
    "--ynorm": "--norm",
    "--xignore": "--ignore",
    "--yignore": "--ignore",
    "--dir_file": "--directions",
    "--surf_file": "--out (compute) or the file argument (plot, view)",
    "--loss_name": "--loss",
    "--batch_size": "--batch-size",
    "--datapath": "--data-root",
    "--cuda": "--device cuda",
    "--ngpu": "torchrun --nproc_per_node N -m landscape.compute ...",
    "--mpi": "torchrun -m landscape.compute ... (docs/distributed.md)",
    "--vlevel": "--levels",
    "--zmax": "--vmax",
    "--zlim": "--vmin and --vmax",
    "--raw_data": "--dataset module.path:function (your own data, used as given)",
    "--proj_file": "landscape trajectory (PCA directions of a training path)",
    "--dir_type": "--norm and --ignore",
}


def _debug_traceback() -> None:
    """With LANDSCAPE_DEBUG=1, bad input shows its traceback too (to find where it came from)."""
    if os.environ.get("LANDSCAPE_DEBUG", "") not in ("", "0"):
        traceback.print_exc()


def bad_input(prog: str, message: str) -> int:
    """Print one line naming the problem and the fix; return exit code 2."""
    first = " ".join(str(message).split())
    print(f"{prog}: error: {first}", file=sys.stderr)
    return EXIT_BAD_INPUT


# What an interrupted command keeps, said truthfully (`guarded`'s `kept`).
NOTHING_WRITTEN = "nothing was written (every output is written whole or not at all)"
RESUMABLE = "everything computed so far is saved - rerun the same command to resume"


def terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: stop like Ctrl-C (a scheduler's preemption, `kill`, `timeout`)."""
    raise KeyboardInterrupt


def _redeliver_interrupt(unraisable: Any) -> None:
    """A Ctrl-C or SIGTERM that lands inside a finalizer (``__del__``, a weakref callback)
    is swallowed by Python and the command would run on: raise it again at the next line
    the main thread runs after the finalizer (a one-shot trace function, then removed)."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)
        return
    previous = sys.gettrace()

    def raise_interrupt(frame: Any, event: str, arg: Any) -> Any:
        sys.settrace(previous)
        traced = frame
        while traced is not None:
            traced.f_trace = None
            traced = traced.f_back
        raise KeyboardInterrupt

    sys.settrace(raise_interrupt)  # frames called from now on
    frame = sys._getframe(1)  # and the frames running now, from the innermost
    while frame is not None:
        frame.f_trace = raise_interrupt
        frame = frame.f_back


def guarded(prog: str, fn: Callable[[], int], *, kept: str = NOTHING_WRITTEN) -> int:
    """Run a command body: bad input -> 2 and one line; Ctrl-C or SIGTERM -> 130; a bug ->
    its traceback, a line asking to report it, and 1.

    Bad input is an `InputError` (or `models.ModelError`) raised where input is checked,
    or an OS error about a path or the disk; every other exception is a bug.

    `kept` says what an interruption leaves behind (e.g. `RESUMABLE`).
    """
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(message)s")
    for stream in (sys.stdout, sys.stderr):
        # A path the terminal's encoding cannot show (e.g. a non-ASCII --out under an ASCII
        # locale) is printed escaped, instead of failing after the work is done.
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate_as_interrupt) if in_main else None
    # Ctrl-C raises KeyboardInterrupt from here on (before, a program stops at once:
    # landscape.cli.early), so that what was kept is said.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main else None
    previous_hook, sys.unraisablehook = sys.unraisablehook, _redeliver_interrupt
    try:
        code = fn()
        sys.stdout.flush()  # here, where a closed pipe can still be answered
        return code
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return reader_left()
    except (InputError, ModelError) as e:
        _debug_traceback()
        text = e.as_flag() if isinstance(e, InputError) else str(e)
        return bad_input(prog, text or type(e).__name__)
    except OSError as e:
        _debug_traceback()
        return bad_input(prog, os_error_message(e))
    except Exception:  # noqa: BLE001 - anything else is a bug: say so, with its traceback
        traceback.print_exc()
        print(
            f"{prog}: this is a bug, not a problem with your input: in your own dataset or model "
            "function if the traceback ends there, else in landscape - please report it to "
            "the landscape developers with the traceback above",
            file=sys.stderr,
        )
        return EXIT_BUG
    finally:
        sys.unraisablehook = previous_hook
        # Only our own handler is undone: a torchrun rank whose exit code is decided
        # ignores SIGTERM from here to its exit (see landscape.surface.distributed).
        if in_main and signal.getsignal(signal.SIGTERM) is terminate_as_interrupt:
            signal.signal(signal.SIGTERM, previous)
        if in_main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)


def exit_after(code: int) -> NoReturn:
    """End a program whose command returned `code`: SIGINT and SIGTERM are ignored from
    here (the result is decided; a signal in the interpreter's teardown would otherwise
    kill the process by the signal after its last line), then exit with `code`."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)


def reader_left() -> int:
    """The reader of stdout has gone (``landscape models | head``): stop quietly, as ``cat``
    does, with the shell's code for it; what is still buffered goes nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE


class UsageError(InputError):
    """A command-line usage error; `guarded` prints it on one line and returns 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's own ``(default: X)`` after every option's help, so no help string types
    a default by hand; left out for on/off flags (their help says what the flag does),
    where there is nothing to say (None) or where the help already explains a default that
    is computed (``default: beside FILE``). A list default reads as it is typed (0.5,0.75)."""

    # One vocabulary for what an option takes, whichever command offers it (an option
    # that names its own metavar keeps it).
    METAVARS = {
        "out": "PATH", "ckpt": "PATH", "ckpt2": "PATH", "ckpt3": "PATH", "figure": "PATH",
        "seed": "INT", "data_seed": "INT", "batch_size": "INT", "samples": "N",
        "dataset": "NAME", "model": "NAME", "data_root": "DIR", "title": "TEXT",
        "label": "TEXT", "device": "DEVICE", "split": "SPLIT",
    }  # fmt: skip

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        if action.dest in self.METAVARS:
            return self.METAVARS[action.dest]
        if action.type is int:
            return "N"
        if action.type is float:
            return "X"
        return super()._get_default_metavar_for_optional(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if action.nargs == 0 or default is None or default is argparse.SUPPRESS:
            return text
        if "default" in text:
            return text
        if isinstance(default, tuple | list):
            return f"{text} (default: {','.join(map(str, default))})"
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit code 2, as every bad input), and
    defaults shown in ``--help`` by `HelpFormatter`.

    A value starting with a minus sign (``--x -1:1:51``, ``--vmin -2``) is taken as
    the value of the option before it, as users expect, instead of as an option.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        # A typo is an error, not another option: --sample 10 must not be --samples 10.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        args = list(sys.argv[1:] if args is None else args)
        original = [
            f"{flag} -> {ORIGINAL_FLAGS[flag]}"
            for flag in dict.fromkeys(t.split("=")[0] for t in args if t.startswith("--"))
            if flag in ORIGINAL_FLAGS and flag not in self._option_string_actions
        ]
        if original:
            raise UsageError(
                f"flags of the original loss-landscape code: {'; '.join(original)} "
                "(README: Coming from loss-landscape)"
            )
        merged: list[str] = []
        for token in args:
            prev = merged[-1] if merged else ""
            if _NEGATIVE_VALUE.match(token) and prev.startswith("--") and "=" not in prev:
                merged[-1] = f"{prev}={token}"
            else:
                merged.append(token)
        return super().parse_known_args(merged, namespace)

    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            flags = [o for a in self._actions for o in a.option_strings]
            hints = []
            for token in unknown[1].split():
                close = difflib.get_close_matches(token.split("=")[0], flags, n=1)
                if token.startswith("--") and close:
                    hints.append(f"{token.split('=')[0]} -> {close[0]}")
            if hints:
                message += f"; did you mean {', '.join(hints)}?"
        raise UsageError(f"{message} (see --help)")
