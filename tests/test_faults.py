"""Faults: SIGKILL at random moments, Ctrl-C, a full disk, diverged points.

A command runs in a forked child (`procs.Child`: the package is already imported, so
a run takes a fraction of a second and many kills fit in a test); the parent kills it,
limits its file size, or interrupts it, then checks what is left on disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from procs import HANG, Child, compute_args, kill_when, run_to_end, surface_points, wait_for
from surfaces import assert_points_match_one_process, make_surface_file

from landscape import compute, export, plot, train, view
from landscape.io.surface_file import SurfaceFile, read_directions, read_surface
from landscape.models import read_checkpoint
from landscape.viz import figures

# ---------------------------------------------------------------- compute


@pytest.mark.child
def test_24_sigkills_at_random_moments_then_resume_is_identical(tmp_path, tiny_ckpt):
    # 40,401 points: the killed runs together compute fewer than 200, so every run
    # dies by its kill, never by finishing, whatever the machine's speed.
    out = tmp_path / "killed.h5"
    argv = compute_args(tiny_ckpt, out, "--x", "-1:1:201", "--y", "-1:1:201")
    rng = random.Random(0)
    done_at_kill = []
    for _ in range(24):
        # Start-up, file creation, any chunk of points: a random moment in the first
        # second, or once 1 to 6 more points are on disk, whichever comes first.
        before, more = surface_points(out), rng.randint(1, 6)
        kill_when(
            compute.main,
            argv,
            tmp_path,
            lambda before=before, more=more: surface_points(out) >= before + more,
            within=rng.choice([rng.uniform(0.0, 1.0), HANG]),
        )
        if out.exists():  # the file opens after every kill
            done_at_kill.append(int(read_surface(out).computed.sum()))
        else:
            done_at_kill.append(-1)  # killed before the file existed
    assert len(done_at_kill) == 24
    assert len(set(done_at_kill)) >= 5, done_at_kill  # the kills hit different moments
    assert done_at_kill == sorted(done_at_kill)  # nothing computed is ever lost

    # A rerun resumes: it keeps every point and computes more, each one exactly what a
    # single process evaluating it alone gets (a small finished run: the same directions).
    kept = read_surface(out)
    kill_when(
        compute.main, argv, tmp_path, lambda: surface_points(out) > done_at_kill[-1], within=HANG
    )
    a = read_surface(out)
    assert a.computed[kept.computed].all() and a.computed.sum() > kept.computed.sum()
    for name in a.values:
        np.testing.assert_array_equal(
            a.values[name][kept.computed], kept.values[name][kept.computed]
        )
    assert assert_points_match_one_process(out, argv, limit=400) < a.computed.size
    ref = tmp_path / "ref.h5"
    small = compute_args(tiny_ckpt, ref, "--x", "-1:1:3", "--y", "-1:1:3")
    assert run_to_end(compute.main, small, tmp_path)[0] == 0
    da, db = read_directions(out), read_directions(ref)
    for axis in ("x", "y"):
        assert da[axis].keys() == db[axis].keys()
        for name in da[axis]:
            assert torch.equal(da[axis][name], db[axis][name]), (axis, name)


@pytest.mark.child
def test_full_disk_is_one_line_and_the_rerun_completes(tmp_path, tiny_ckpt):
    out = tmp_path / "s.h5"
    argv = compute_args(tiny_ckpt, out)
    code, err = run_to_end(compute.main, argv, tmp_path, fsize=20_000)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot write {str(out)!r}" in err and "free some space" in err
    assert not out.exists() and not list(tmp_path.glob(".s.h5.*"))  # no half-written file
    code, err = run_to_end(compute.main, argv, tmp_path)
    assert code == 0, err
    assert read_surface(out).computed.all()


@pytest.mark.child
def test_full_disk_while_plotting_leaves_no_partial_figure(tmp_path):
    from surfaces import make_surface_file

    surface = make_surface_file(tmp_path, "s.h5", shape=(9, 9))
    png = tmp_path / "s.png"
    code, err = run_to_end(plot.main, [str(surface), "--out", str(png)], tmp_path, fsize=2_000)
    assert code == 2 and "free some space" in err and err.count("\n") == 1, err
    assert not png.exists() and not list(tmp_path.glob(".s.png.*"))


# SIGINT / SIGTERM during compute (a real child process): tests/test_compute.py


# ---------------------------------------------------------------- train


def train_args(out: Path, *extra: str) -> list[str]:
    return [
        "--dataset", "tinydata:tiny", "--epochs", "4", "--batch-size", "8", "--lr", "0.02",
        "--out", str(out), "--no-progress", "--device", "cpu", *extra,
    ]  # fmt: skip


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = read_checkpoint(a)["state_dict"], read_checkpoint(b)["state_dict"]
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.child
def test_train_sigkills_then_resume_reach_the_same_weights(tmp_path):
    epochs = ("--epochs", "16")  # the 8 killed runs finish about one epoch each
    code, err = run_to_end(train.main, train_args(tmp_path / "straight", *epochs), tmp_path)
    assert code == 0, err

    out = tmp_path / "killed"
    rng = random.Random(1)
    for _ in range(8):
        # A random moment of start-up or training, at the latest once the next epoch's
        # checkpoint is written: never the end of the run.
        following = out / f"epoch_{len(list(out.glob('epoch_*.pt'))) + 1:03d}.pt"
        kill_when(
            train.main, train_args(out, *epochs), tmp_path, following.exists,
            within=rng.uniform(0.0, 2.0),
        )  # fmt: skip
        for ckpt in out.glob("epoch_*.pt"):
            read_checkpoint(ckpt)  # every checkpoint on disk is whole
        assert not (out / "final.pt").exists()
    code, err = run_to_end(train.main, train_args(out, *epochs), tmp_path)
    assert code == 0, err
    assert_same_weights(out / "final.pt", tmp_path / "straight" / "final.pt")


@pytest.mark.child
def test_train_full_disk_then_resume(tmp_path):
    out = tmp_path / "run"
    code, err = run_to_end(train.main, train_args(out), tmp_path, fsize=200_000)
    assert code == 2 and "free some space" in err and err.count("\n") == 1, err
    assert not list(out.glob(".*.tmp"))  # no half-written checkpoint
    code, err = run_to_end(train.main, train_args(out), tmp_path)
    assert code == 0, err
    code, err = run_to_end(train.main, train_args(tmp_path / "straight"), tmp_path)
    assert_same_weights(out / "final.pt", tmp_path / "straight" / "final.pt")


@pytest.mark.child
def test_train_ctrl_c_exits_130_and_resumes(tmp_path):
    out = tmp_path / "run"
    child = Child(train.main, train_args(out, "--epochs", "200"), tmp_path)
    # Training, with its handlers in place, and 199 epochs to go: the signal ends it.
    wait_for(child, (out / "epoch_001.pt").exists, "the first checkpoint")
    os.kill(child.pid, signal.SIGINT)
    assert child.wait() == 130, child.stderr
    assert "rerun the same command to resume" in child.stderr


# ---------------------------------------------------------------- diverged points


def test_diverged_points_are_stored_counted_and_rendered(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "wide.h5"
    # At |alpha| = 1e30 the weights overflow: the loss is NaN or inf there.
    argv = compute_args(tiny_ckpt, out, "--x", "-1e30:1e30:5", "--y", "-1:1:3")
    assert compute.main(argv) == 0
    assert "points diverged (loss NaN or inf)" in capsys.readouterr().out
    s = read_surface(out)
    loss = s.get("train", "loss")
    assert s.computed.all()  # stored, not left to be recomputed
    assert np.isinf(loss[[0, -1], :]).all() and np.isfinite(loss[2, :]).all()
    assert s.diverged.sum() == 12  # alpha = +-5e29 and +-1e30
    assert compute.main(argv) == 0  # a rerun has nothing left to do
    np.testing.assert_array_equal(read_surface(out).get("train", "loss"), loss)

    # Colour scales come from the finite values only; every figure and the viewer render.
    scale = figures.resolve_scale([loss])
    assert np.isfinite([scale.vmin, scale.vmax]).all() and scale.vmax <= np.nanmax(loss[2])
    for kind in ("contour", "contourf", "heatmap", "surface"):
        png = tmp_path / f"{kind}.png"
        assert plot.main([str(out), "--kind", kind, "--out", str(png)]) == 0
        assert png.stat().st_size > 1000
    assert view.main([str(out), "--out", str(tmp_path / "v.html")]) == 0
    assert export.main([str(out), "--csv", "--out", str(tmp_path / "v.csv")]) == 0
    assert "inf" in (tmp_path / "v.csv").read_text()


@pytest.mark.child
def test_a_second_training_into_the_same_folder_is_refused(tmp_path, capsys):
    from landscape.core.files import exclusive_lock

    out = tmp_path / "run"
    child = Child(train.main, train_args(out, "--epochs", "200"), tmp_path)
    wait_for(child, (out / "epoch_001.pt").exists, "the first checkpoint")  # it holds the lock
    try:
        assert train.main(train_args(out, "--epochs", "200")) == 2
        assert "being trained by another process" in capsys.readouterr().err
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    with exclusive_lock(out / ".lock", "still locked"):  # the lock died with its holder
        pass


# ---------------------------------------------------------------- export --publish


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_replaces_only_an_earlier_copy_of_the_same_source(tmp_path, capsys):
    a = make_surface_file(tmp_path, "a.h5", shape=(5, 4), partial=0.5)
    b = make_surface_file(tmp_path, "b.h5", shape=(5, 4), config={"seed": 1})
    pub = tmp_path / "a_published.h5"
    assert export.main([str(a), "--publish"]) == 0
    assert export.main([str(a), "--publish"]) == 0  # a rerun replaces its own copy
    capsys.readouterr()
    # Another surface, or a copy of another source: never replaced without --overwrite.
    for src, target in ((a, b), (b, pub)):
        before = _sha(target)
        assert export.main([str(src), "--publish", "--out", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "exists and is a landscape-surface file of another" in err
        assert _sha(target) == before
    # A copy that holds a point its source lacks (a compute resumed the copy): kept too.
    with SurfaceFile(pub) as copy:
        one = {f"{s}_{m}": np.array([0.5]) for s in ("train", "test") for m in ("loss", "accuracy")}
        copy.write((np.array([4]), np.array([3])), one)
    before = _sha(pub)
    assert export.main([str(a), "--publish"]) == 2
    assert _sha(pub) == before and "of another job" in capsys.readouterr().err
    assert export.main([str(a), "--publish", "--overwrite"]) == 0  # asked for
    assert not read_surface(pub).computed[4, 3]


def _pausing(main, *, at: int, ready: Path, go: Path):
    """`main` in whose process the `at`-th surface write first creates `ready`, then waits
    until `go` exists: the writer holds its lock, with `at - 1` points on disk."""

    def run(argv):
        from landscape.io import surface_file

        real, calls = surface_file.SurfaceFile.write, []

        def write(self, index, values):
            calls.append(1)
            if len(calls) == at:
                ready.touch()
                while not go.exists():  # the test's sign to go on
                    time.sleep(0.01)
            return real(self, index, values)

        surface_file.SurfaceFile.write = write
        return main(argv)

    return run


@pytest.mark.child
def test_publish_never_touches_a_file_being_computed_and_the_compute_finishes(
    tmp_path, tiny_ckpt, capsys, caplog
):
    """Publishing onto a file a compute writes (even with --overwrite) or publishing that
    file itself is refused in one line; the compute goes on to its end. Other exports of
    it read the points finished so far, each whole, and say so."""
    other = make_surface_file(tmp_path, "other.h5", shape=(5, 4))
    out, ready, go = tmp_path / "s.h5", tmp_path / "ready", tmp_path / "go"
    child = Child(
        _pausing(compute.main, at=3, ready=ready, go=go), compute_args(tiny_ckpt, out), tmp_path
    )
    try:
        wait_for(child, ready.exists, "the compute's third write (it holds the lock)")
        before = _sha(out)
        for extra, why in (([], "of another job"), (["--overwrite"], "being written by another")):
            assert export.main([str(other), "--publish", "--out", str(out), *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and why in err, err
        assert _sha(out) == before
        published = tmp_path / "p.h5"
        assert export.main([str(out), "--publish", "--out", str(published)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "being written by another process" in err, err
        assert not published.exists()
        with caplog.at_level(logging.WARNING):
            assert export.main([str(out), "--csv", "--out", str(tmp_path / "s.csv")]) == 0
        assert "exporting the 2 of 143 points finished so far" in caplog.text
        assert (tmp_path / "s.csv").read_text().count("nan") > 100
        assert _sha(out) == before
    finally:
        go.touch()
    assert child.wait() == 0, child.stderr
    assert read_surface(out).computed.all()
