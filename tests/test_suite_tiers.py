"""The suite's own rules: the fast tier starts no child process (the guard in conftest.py
keeps the ``child`` marks true), helpers live in helpers.py, tests/README.md maps them all."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
from helpers import PYTHON, REPO, TESTS

TEST_FILES = sorted(p.name for p in TESTS.glob("test_*.py"))


def make_recipe(target: str) -> list[str]:
    """The pytest arguments of `make TARGET`."""
    text = (REPO / "Makefile").read_text()
    recipe = re.search(rf"^{target}:.*\n\t(.*)$", text, re.M)
    assert recipe, f"no `{target}` target in the Makefile"
    argv = shlex.split(recipe[1])
    assert argv[1:3] == ["-m", "pytest"], recipe[1]
    return argv[3:]


def test_make_test_fast_leaves_out_exactly_the_child_tests():
    assert make_recipe("test-fast") == ["-m", "not slow and not gpu and not child"]
    assert make_recipe("test") == []  # everything but slow and gpu (pyproject's addopts)
    assert "-m 'not slow and not gpu'" in (REPO / "pyproject.toml").read_text()


def test_the_guard_watches_every_way_to_start_a_process():
    for owner, name in [(subprocess.Popen, "_execute_child"), (os, "fork"), (os, "posix_spawn")]:
        assert hasattr(getattr(owner, name), "__wrapped__"), f"{name} is not guarded"


GUARDED = """
import os, subprocess, pytest

def test_fast_runs_a_command():
    subprocess.run(["true"])

def test_fast_forks():
    pid = os.fork()
    if pid == 0:  # only if the guard let it through
        os._exit(0)
    os.waitpid(pid, 0)

def test_fast_swallows_the_refusal():
    try:
        subprocess.run(["true"])
    except Exception:
        pass

def test_fast_in_process():
    assert sum([1, 2]) == 3

@pytest.fixture(scope="module")
def shared():
    with subprocess.Popen(["cat"], stdin=subprocess.PIPE) as proc:
        yield proc
        proc.stdin.close()

@pytest.mark.child
def test_child_runs_a_command():
    subprocess.run(["true"], check=True)

@pytest.mark.child
def test_child_starts_the_shared_one(shared):
    assert shared.poll() is None

@pytest.mark.child
def test_child_uses_the_shared_one(shared):
    assert shared.poll() is None

@pytest.mark.child
def test_child_starts_none():
    assert sum([1, 2]) == 3
"""


@pytest.mark.child
def test_the_guard_fails_unmarked_children_and_needless_marks(tmp_path):
    """In a suite of its own (this conftest.py, a test file of each case)."""
    for name in ("conftest.py", "helpers.py"):
        (tmp_path / name).write_text((TESTS / name).read_text())
    (tmp_path / "test_guarded.py").write_text(GUARDED)
    run = subprocess.run(
        [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-o", "addopts=", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    outcome = dict(
        reversed(m)
        for m in re.findall(r"^(PASSED|FAILED) test_guarded\.py::(\w+)", run.stdout, re.M)
    )
    assert outcome == {
        "test_fast_runs_a_command": "FAILED",
        "test_fast_forks": "FAILED",
        "test_fast_swallows_the_refusal": "FAILED",
        "test_fast_in_process": "PASSED",
        "test_child_runs_a_command": "PASSED",
        "test_child_starts_the_shared_one": "PASSED",
        "test_child_uses_the_shared_one": "PASSED",
        "test_child_starts_none": "FAILED",
    }, run.stdout + run.stderr
    assert "starts a child process (true) but is not marked `child`" in run.stdout
    assert "tried to start a child process (true)" in run.stdout  # the swallowed one
    assert "is marked `child` but started no child process" in run.stdout


def test_helpers_are_imported_from_helpers_not_conftest():
    for name in [*TEST_FILES, "procs.py", "surfaces.py", "browser.py", "tinydata.py"]:
        text = (TESTS / name).read_text()
        assert not re.search(r"^\s*(from conftest import|import conftest)", text, re.M), (
            f"tests/{name} imports from conftest: import helpers from tests/helpers.py"
        )


def test_the_readme_names_every_test_file_and_subpackage():
    readme = (TESTS / "README.md").read_text()
    missing = [name for name in TEST_FILES if name not in readme]
    assert not missing, f"tests/README.md does not name {missing}: add them to its tables"
    packages = sorted(
        p.parent.relative_to(REPO).as_posix() + "/"
        for p in (REPO / "landscape").glob("*/__init__.py")
    )
    missing = [name for name in packages if f"`{name}" not in readme]
    assert not missing, f"tests/README.md does not map {missing} to its tests"
