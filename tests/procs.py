"""Child processes for tests that interrupt, kill or race them, without wall-clock luck.

A test never sleeps for a guessed time and never hopes that a command is still
running: it waits for an explicit sign that the state under test has been
reached (a line on the child's output, a file, a point count on disk), gives the
child work that cannot end before the signal, and uses timeouts only as a guard
against hangs (`HANG`), never as a sign of anything.
"""

from __future__ import annotations

import codecs
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from helpers import REPO, subprocess_env

HANG = 300.0  # seconds: only a hung child or test takes this long, whatever the machine
POLL = 0.02  # seconds between looks at a predicate on disk (a pause, not a sign)


def default_sigint() -> None:
    """Give a child the default Ctrl-C: a suite started in the background of a
    non-interactive shell (`make test &`, some CI runners) inherits SIGINT *ignored*, and
    a child that ignores it could never show how it handles Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until(
    predicate: Callable[[], bool],
    *,
    alive: Callable[[], bool] | None = None,
    what: str = "the condition",
    timeout: float = HANG,
    describe: Callable[[], str] = str,
) -> None:
    """Block until `predicate()` holds. Fails if `alive()` turns false first (the child
    ended before reaching the state), or after `timeout` s (a hang guard)."""
    guard = time.monotonic() + timeout
    while not predicate():
        if alive is not None and not alive():
            if predicate():  # reached just before it ended
                return
            raise AssertionError(f"the child ended before {what}: {describe()}")
        if time.monotonic() > guard:
            raise AssertionError(f"hang: no {what} after {timeout:g} s: {describe()}")
        time.sleep(POLL)


class Proc:
    """A command in a child process; threads read its stdout and stderr (pipes never fill).

    `wait_for` blocks until a regex appears on its output, `wait_until` until a
    predicate holds, both failing if the child ends first; `finish` waits for the end.
    """

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike = REPO,
        **popen: object,
    ) -> None:
        self.cmd = list(cmd)
        self.popen = subprocess.Popen(
            self.cmd,
            cwd=cwd,
            env=subprocess_env() if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=default_sigint,
            **popen,
        )
        self.pid = self.popen.pid
        self._chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", self.popen.stdout), ("stderr", self.popen.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            # Whatever is there, at once: progress bars (\r, no \n) show up too.
            chunk = os.read(stream.fileno(), 65536)
            with self._changed:
                self._chunks[name].append(decoder.decode(chunk, final=not chunk))
                self._changed.notify_all()
            if not chunk:
                break
        stream.close()
        with self._changed:
            self._changed.notify_all()

    @property
    def out(self) -> str:
        with self._changed:
            return "".join(self._chunks["stdout"])

    @property
    def err(self) -> str:
        with self._changed:
            return "".join(self._chunks["stderr"])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def describe(self) -> str:
        return (
            f"{self.cmd[:4]}... exit {self.popen.poll()}\nstdout:\n{self.out}\nstderr:\n{self.err}"
        )

    def wait_for(self, pattern: str, *, stream: str = "stderr", timeout: float = HANG) -> re.Match:
        """The first match of `pattern` on `stream` ("stdout", "stderr"), once it appears."""
        regex, guard = re.compile(pattern, re.MULTILINE), time.monotonic() + timeout
        with self._changed:
            while True:
                match = regex.search("".join(self._chunks[stream]))
                if match:
                    return match
                if not any(r.is_alive() for r in self._readers):  # both pipes closed: ended
                    raise AssertionError(f"{pattern!r} never appeared: {self._describe()}")
                left = guard - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"hang: no {pattern!r} in {timeout:g} s")
                self._changed.wait(min(left, 1.0))

    def _describe(self) -> str:  # with the lock held
        out, err = ("".join(self._chunks[k]) for k in ("stdout", "stderr"))
        return f"{self.cmd[:4]}...\nstdout:\n{out}\nstderr:\n{err}"

    def wait_until(
        self, predicate: Callable[[], bool], *, what: str = "the condition", timeout: float = HANG
    ) -> None:
        """Block until `predicate()` holds; fails if the child ends first."""
        wait_until(predicate, alive=self.alive, what=what, timeout=timeout, describe=self.describe)

    def send_signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def finish(self, timeout: float = HANG) -> tuple[int, str, str]:
        """Exit code (minus the signal that ended it), stdout and stderr, at the end."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(
                f"hang: still running after {timeout:g} s: {self.describe()}"
            ) from None
        for reader in self._readers:
            reader.join(timeout)
        return code, self.out, self.err

    def stop(self) -> None:
        """Kill the child if it still runs (cleanup), and reap it."""
        if self.alive():
            self.popen.kill()
        self.popen.wait()
        for reader in self._readers:
            reader.join(HANG)

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def surface_points(path: Path) -> int:
    """Points computed in a surface file on disk; 0 while it does not exist yet."""
    from landscape.io.surface_file import read_surface

    if not path.exists():
        return 0
    try:
        return int(read_surface(path).computed.sum())
    except (OSError, KeyError, ValueError):  # being created: not readable yet
        return 0


# ------------------------------------------------- a command in a forked child (test_faults)

Main = Callable[[Sequence[str]], int]


class Child:
    """A command line run in a forked child; stderr goes to a file.

    The package is already imported, so a run takes a fraction of a second and many
    kills fit in a test.
    """

    def __init__(self, main: Main, argv: Sequence[str], tmp: Path, *, fsize: int | None = None):
        self.err_path = tmp / f"stderr.{time.monotonic_ns()}"
        self.pid = os.fork()
        if self.pid == 0:  # the child: run the command, never return into pytest
            code = 99
            try:
                # Ctrl-C as in a terminal, even when the suite runs in the background of a
                # shell (which starts it with SIGINT ignored).
                signal.signal(signal.SIGINT, signal.default_int_handler)
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until os._exit
                sys.stderr = open(self.err_path, "w", buffering=1)  # noqa: SIM115
                if fsize is not None:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
                code = main(list(argv))
            finally:
                try:  # under `fsize` the flush itself may fail: never run on into pytest
                    sys.stderr.flush()
                finally:
                    os._exit(code)

    code: int | None = None

    def wait(self) -> int:
        """The exit code, or minus the signal that ended the child."""
        if self.code is None:
            _, status = os.waitpid(self.pid, 0)
            self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def finished(self) -> bool:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return False
            self.code = os.waitstatus_to_exitcode(status)
        return True

    @property
    def stderr(self) -> str:
        return self.err_path.read_text() if self.err_path.exists() else ""


def run_to_end(main: Main, argv: Sequence[str], tmp: Path, **kw) -> tuple[int, str]:
    child = Child(main, argv, tmp, **kw)
    return child.wait(), child.stderr


def wait_for(child: Child, sign: Callable[[], bool], what: str) -> None:
    """Block until `sign()` holds; fails if the child ends first (or hangs, `HANG` s)."""
    wait_until(
        sign,
        alive=lambda: not child.finished(),
        what=what,
        describe=lambda: f"exit {child.code}: {child.stderr}",
    )


def kill_when(
    main: Main, argv: Sequence[str], tmp: Path, sign: Callable[[], bool], *, within: float
) -> None:
    """Start the command and SIGKILL it when `sign()` holds, or at a random moment of its
    first `within` s if that comes first. Its work must not be able to finish before
    `sign()` holds: the child must die by the kill."""
    child = Child(main, argv, tmp)
    start = time.monotonic()
    # Not a sign, a random moment: whatever the child has reached by then is fine.
    wait_for(child, lambda: sign() or time.monotonic() - start > within, "the kill's moment")
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, child.stderr


def compute_args(ckpt: Path, out: Path, *extra: str) -> list[str]:
    """``landscape compute`` arguments of a small surface (13 x 11, pointwise, CPU) of the
    tiny data; `extra` arguments come last and override."""
    return [
        "--ckpt", str(ckpt), "--dataset", "tinydata:tiny", "--out", str(out), "--quiet",
        "--x", "-1:1:13", "--y", "-1:1:11", "--strategy", "pointwise", "--device", "cpu", *extra,
    ]  # fmt: skip
