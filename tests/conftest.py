"""Fixtures and hooks only; shared helpers are in `helpers.py` (tests/README.md: the tiers).

A test that starts a child process (an interpreter, a fork, a browser, a notebook kernel)
is marked ``child``: ``make test-fast`` leaves those out (``-m "not child"``). The guard
below keeps the marks true in every run, the fast tier's and the full suite's alike:

- a test not marked ``child`` that starts a child fails, naming the command (even where the
  code under test catches the error);
- a test marked ``child`` that passes without starting one (itself, or through a fixture
  that did) fails too, so the fast tier misses nothing that could run in it.
"""

from __future__ import annotations

import functools
import multiprocessing.util
import os
import platform
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import TESTS, make_checkpoint

# Deterministic, and fair to a 2-core machine shared with other work.
torch.set_num_threads(1)


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    """A resnet20 checkpoint with non-trivial BatchNorm statistics."""
    return make_checkpoint(tmp_path / "tiny.pt")


@pytest.fixture
def tiny_dataset() -> str:
    """``--dataset`` spec of `tests/tinydata.py`: 48 train / 32 test images of 8x8."""
    return "tinydata:tiny"


@pytest.fixture(autouse=True)
def _tests_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Decoded image folders are cached in a folder of the run's, not the user's cache
    (children inherit it)."""
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# ------------------------------------------------------------------ the child-process guard


class ChildProcessForbidden(RuntimeError):
    """A test outside the ``child`` tier tried to start a child process."""


class _Guard:
    """Which test runs now, whether it may start children, and what it started."""

    item: pytest.Item | None = None
    allowed = True  # outside a test (collection, session start): anything goes
    started = 0  # children started by the current test (its fixtures included)
    refused: list[str] = []
    child_fixtures: set[str] = set()  # fixtures seen starting a child


_GUARD = _Guard()

# Every way the standard library starts a process: subprocess (also os.popen, asyncio,
# webbrowser), fork (multiprocessing's fork, os.spawn*, pty), posix_spawn, and
# multiprocessing's spawn and forkserver. (os.system is left alone: tests pickle it.)
_STARTERS = [
    (subprocess.Popen, "_execute_child"),
    (os, "fork"),
    (os, "forkpty"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (multiprocessing.util, "spawnv_passfds"),
]
_REAL: dict[tuple[object, str], object] = {}


def _command(name: str, args: tuple) -> str:
    if name == "_execute_child" and len(args) > 1:  # (self, args, executable, ...)
        cmd = args[1]
        return " ".join(map(str, cmd)) if isinstance(cmd, list | tuple) else str(cmd)
    return f"os.{name}()" if name != "spawnv_passfds" else "a multiprocessing child"


def _guarded(name: str, real):
    @functools.wraps(real)
    def start(*args, **kwargs):
        if not _GUARD.allowed:
            what = _command(name, args)[:200]
            _GUARD.refused.append(what)
            raise ChildProcessForbidden(
                f"{_GUARD.item.nodeid} starts a child process ({what}) but is not marked "
                "`child`: mark it @pytest.mark.child (make test-fast leaves those out) or "
                "run the code in this process"
            )
        _GUARD.started += 1
        return real(*args, **kwargs)

    return start


def pytest_configure(config: pytest.Config) -> None:
    # The standard library asks `uname -p` once and caches it (h5py's first import does,
    # through platform.processor): ask it here, before the guard, not inside a test.
    platform.processor()
    for owner, name in _STARTERS:
        real = getattr(owner, name, None)
        if real is not None:
            _REAL[owner, name] = real
            setattr(owner, name, _guarded(name, real))


def pytest_unconfigure(config: pytest.Config) -> None:
    for (owner, name), real in _REAL.items():
        setattr(owner, name, real)
    _REAL.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    _GUARD.item, _GUARD.started, _GUARD.refused = item, 0, []
    _GUARD.allowed = item.get_closest_marker("child") is not None
    try:
        return (yield)
    finally:
        _GUARD.item, _GUARD.allowed = None, True


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
    before = _GUARD.started
    try:
        return (yield)
    finally:
        if _GUARD.started > before:  # e.g. a browser shared by a module's tests
            _GUARD.child_fixtures.add(fixturedef.argname)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when != "call" or not report.passed:
        return report
    if _GUARD.refused:  # refused, and the code under test swallowed the error
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} tried to start a child process ({_GUARD.refused[0]}) but is not "
            "marked `child`: mark it @pytest.mark.child or run the code in this process"
        )
    elif (
        item.get_closest_marker("child") is not None
        and _GUARD.started == 0
        and not _GUARD.child_fixtures & set(getattr(item, "fixturenames", ()))
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} is marked `child` but started no child process: remove the mark "
            "so that `make test-fast` runs it"
        )
    return report
