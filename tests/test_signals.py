"""Ctrl-C and SIGTERM stop every long-running command the same way: exit 130, one line that
says truthfully what was kept, and a rerun that resumes where something was kept.

No timing luck: each command runs in a child process in which one library function of its
long phase is wrapped to print ``READY`` on its `block_at`-th call and then never return, so
the signal always lands in the middle of the work, on any machine, however busy.
"""

from __future__ import annotations

import signal
import subprocess

import numpy as np
import pytest
from helpers import PYTHON, make_checkpoint, subprocess_env
from procs import HANG, Proc

from landscape.io.surface_file import read_surface

# argv: TARGET BLOCK_AT COMMAND_MODULE ARGS...; TARGET is module:attr.path of the wrapped
# function. Calls before BLOCK_AT run for real (e.g. an epoch is trained and saved).
_WRAPPER = r"""
import importlib, sys, threading
target, block_at, command, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
mod_name, _, path = target.partition(":")
owner = importlib.import_module(mod_name)
*parents, name = path.split(".")
for p in parents:
    owner = getattr(owner, p)
real, calls = getattr(owner, name), []
def wrapped(*args, **kwargs):
    calls.append(1)
    if len(calls) < block_at:
        return real(*args, **kwargs)
    print("\nREADY", file=sys.stderr, flush=True)  # on a line of its own, after any bar
    threading.Event().wait()  # the work never finishes; only the signal ends it
setattr(owner, name, wrapped)
sys.exit(importlib.import_module(command).main(argv))
"""


def _interrupt(target: str, command: str, argv: list[str], sig: int, *, block_at: int = 1):
    """Run `command` with `target` blocking, send `sig` once it says READY; (code, stderr)."""
    cmd = [PYTHON, "-c", _WRAPPER, target, str(block_at), command, *map(str, argv)]
    with Proc(cmd) as proc:
        proc.wait_for(r"^READY$")  # (a progress bar's \r never precedes it on its line)
        proc.send_signal(sig)
        code, _, err = proc.finish()
    return code, err.replace("\nREADY\n", "")


def _rerun(command: str, argv: list) -> subprocess.CompletedProcess:
    """The same command again, to its end (it resumes)."""
    return subprocess.run(
        [PYTHON, "-m", command, *map(str, argv)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=HANG,
    )


def _last_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return lines[-1]


SIGNALS = [pytest.param(signal.SIGINT, id="ctrl-c"), pytest.param(signal.SIGTERM, id="sigterm")]
DATA = ["--dataset", "tinydata:tiny", "--samples", "16"]


@pytest.mark.child
@pytest.mark.parametrize("sig", SIGNALS)
def test_compute_keeps_finished_points_and_resumes(tmp_path, sig):
    ckpt, out = make_checkpoint(tmp_path / "m.pt"), tmp_path / "s.h5"
    argv = ["--ckpt", ckpt, *DATA, "--x", "-1:1:9", "--chunk-size", "1", "--batch-size", "16"]
    argv += ["--strategy", "pointwise", "--out", out, "--quiet"]
    # The second chunk never finishes: the first is on disk when the signal comes.
    code, err = _interrupt(
        "landscape.io.surface_file:SurfaceWriter.write", "landscape.compute", argv, sig, block_at=2
    )
    assert code == 130, err
    assert "interrupted; everything computed so far is saved" in _last_line(err)
    done = int(read_surface(out).computed.sum())
    assert 0 < done < 9
    resumed = _rerun("landscape.compute", argv)
    assert resumed.returncode == 0, resumed.stderr
    assert read_surface(out).computed.all()


@pytest.mark.child
@pytest.mark.parametrize("sig", SIGNALS)
def test_train_keeps_finished_epochs_and_resumes(tmp_path, sig):
    out = tmp_path / "run"
    argv = ["--model", "resnet20", *DATA, "--test-samples", "8", "--epochs", "3"]
    argv += ["--batch-size", "8", "--out", out, "--device", "cpu", "--no-progress"]
    code, err = _interrupt(
        "landscape.training.trainer:_train_epoch", "landscape.train", argv, sig, block_at=2
    )
    assert code == 130, err
    assert "every finished epoch is saved" in _last_line(err)
    assert sorted(p.name for p in out.glob("epoch_*.pt")) == ["epoch_000.pt", "epoch_001.pt"]
    assert not (out / "final.pt").exists()
    resumed = _rerun("landscape.train", argv)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "epoch 1/3" not in resumed.stdout
    assert "epoch 2/3" in resumed.stdout
    assert (out / "final.pt").exists()


@pytest.mark.child
@pytest.mark.parametrize(
    ("command", "target", "argv", "outputs"),
    [
        (
            "landscape.hessian",
            "landscape.analysis.hessian:lanczos",
            ["--ckpt", "{ckpt}", *DATA, "--out", "{tmp}/h.json"],
            ["h.json", "h.png"],
        ),
        (
            "landscape.hessian",
            "landscape.analysis.hessian:extreme_eigenvalue_map",
            ["--surface", "{tmp}/s.h5", *DATA, "--quiet"],
            ["s_curvature.png"],
        ),
        (
            "landscape.responses",
            "landscape.responses:layer_response_std",
            ["{ckpt}", *DATA, "--out", "{tmp}/r.json"],
            ["r.json", "r.png", "r_grad.png"],
        ),
        (
            "landscape.trajectory",
            "landscape.analysis.trajectory:pca_directions",
            ["{tmp}/run", "--out", "{tmp}/t.h5"],
            ["t.h5", "t.png"],
        ),
    ],
    ids=["hessian", "hessian-surface", "responses", "trajectory"],
)
@pytest.mark.parametrize("sig", SIGNALS)
def test_analysis_commands_stop_cleanly_and_say_nothing_was_written(
    tmp_path, sig, command, target, argv, outputs
):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    for epoch in range(3):
        make_checkpoint(tmp_path / "run" / f"epoch_{epoch:03d}.pt", seed=epoch)
    if "--surface" in argv:
        from landscape import compute

        base = ["--ckpt", str(ckpt), *DATA, "--x", "-1:1:3", "--out", str(tmp_path / "s.h5")]
        assert compute.main([*base, "--quiet"]) == 0
    before = read_surface(tmp_path / "s.h5").values if "--surface" in argv else None
    argv = [a.format(ckpt=ckpt, tmp=tmp_path) for a in argv]
    code, err = _interrupt(target, command, argv, sig)
    assert code == 130, err
    assert "interrupted; nothing was written" in _last_line(err)
    assert "Traceback" not in err
    assert not [name for name in outputs if (tmp_path / name).exists()]
    assert not list(tmp_path.glob(".*.tmp"))
    if before is not None:  # the surface the map goes into is untouched
        after = read_surface(tmp_path / "s.h5").values
        assert after.keys() == before.keys()
        for k in before:
            np.testing.assert_array_equal(after[k], before[k])


@pytest.mark.child
@pytest.mark.parametrize("sig", SIGNALS)
def test_demo_keeps_its_surfaces_and_resumes(tmp_path, sig):
    out = tmp_path / "demo"
    argv = ["--grid", "3", "--samples", "16", "--out", out, "--quiet", "--device", "cpu"]
    code, err = _interrupt("landscape.surface.engine:fill_surface", "landscape.demo", argv, sig)
    assert code == 130, err
    assert "the surfaces computed so far are kept" in _last_line(err)
    # The first surface file exists, no point in it yet, and is resumed by a rerun.
    (first,) = out.glob("*_2d.h5")
    assert not read_surface(first).computed.any()


def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_command(capsys):
    """Python ignores an exception raised in ``__del__`` or a weakref callback, so a Ctrl-C
    landing there used to be lost and the command ran on; it is raised again."""
    from landscape.cli.runner import guarded

    class Finalized:
        def __del__(self):
            raise KeyboardInterrupt  # as a signal arriving while a finalizer runs

    def body() -> int:
        Finalized()  # finalized at once; Python reports and swallows the exception
        for _ in range(10**9):  # only the interrupt ends this early (else ~1 min, then 0)
            pass
        return 0

    assert guarded("landscape test", body) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_body_that_ignores_sigterm_keeps_it_ignored_after_the_command():
    """A torchrun rank whose exit code is decided ignores SIGTERM until it exits (the
    launcher stops every rank once one exits); the command's wrapper used to put the
    default back on its way out, and the rank died by the signal (-15) instead."""
    from landscape.cli.runner import guarded

    def body() -> int:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return 2

    before = signal.getsignal(signal.SIGTERM)
    try:
        assert guarded("landscape test", body) == 2
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert guarded("landscape test", lambda: 0) == 0  # its own handler is undone
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)


# ---------------------------------------------------------------- before and after the command


def _held(entry: str, hold: str, tmp_path, sig: int) -> tuple[int, str, str]:
    """A compute held (tests/hold/sitecustomize.py) while it loads (`hold` import) or in
    the interpreter's teardown after its result (`hold` exit), signalled there; (code, out,
    err). `entry`: ``-m`` (python -m landscape.compute) or ``script`` (the console script)."""
    import os
    import sys
    from pathlib import Path

    from helpers import TESTS

    go = tmp_path / "go"
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS / "hold"), env["PYTHONPATH"]])
    env.update(LANDSCAPE_TEST_HOLD=hold, LANDSCAPE_TEST_GO=str(go))
    argv = ["--ckpt", "pretrained:resnet20", "--samples", "8", "--batch-size", "8",
            "--x=-1:1:3", "--out", str(tmp_path / "s.h5"), "--quiet"]  # fmt: skip
    if entry == "-m":
        cmd = [PYTHON, "-m", "landscape.compute", *argv]
    else:
        cmd = [str(Path(sys.executable).parent / "landscape"), "compute", *argv]
    with Proc(cmd, env=env) as proc:
        proc.wait_for(rf"^HELD {hold}$", stream="stdout")
        proc.send_signal(sig)  # ignored, or acted on before the child runs on
        go.write_text("")
        code, out, err = proc.finish()
    return code, out, err


@pytest.mark.child
@pytest.mark.parametrize("entry", ["-m", "script"])
@pytest.mark.parametrize("sig", SIGNALS)
def test_a_signal_while_the_command_loads_is_one_line_and_130(tmp_path, entry, sig):
    code, _, err = _held(entry, "import", tmp_path, sig)
    assert code == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "nothing was written" in err
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.child
@pytest.mark.parametrize("sig", SIGNALS)
def test_a_signal_after_the_result_does_not_change_the_exit_code(tmp_path, sig):
    code, out, err = _held("-m", "exit", tmp_path, sig)
    assert code == 0 and "wrote" in out, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
