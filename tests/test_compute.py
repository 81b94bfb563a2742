"""`python -m landscape.compute`: exit codes, one-line errors, resume, kills, concurrent writers."""

from __future__ import annotations

import signal
import subprocess

import h5py
import numpy as np
import pytest
import torch
from helpers import PYTHON, REPO, subprocess_env
from procs import HANG, Proc, surface_points
from surfaces import assert_points_match_one_process

from landscape.compute import main
from landscape.io.surface_file import SurfaceWriter, read_surface


def args(ckpt, out, *extra: str) -> list[str]:
    return ["--ckpt", str(ckpt), "--dataset", "tinydata:tiny", "--out", str(out), "--quiet", *extra]


def test_compute_then_resume_keeps_points(tmp_path, tiny_ckpt, capsys) -> None:
    out = tmp_path / "s.h5"
    assert main(args(tiny_ckpt, out, "--x", "-1:1:5", "--y", "-1:1:3")) == 0
    first = read_surface(out).get("train", "loss").copy()
    # Forget some points, as if the run had been killed: a rerun computes exactly those.
    with h5py.File(out, "r+") as f:
        f["train_loss"][1:3, :] = np.nan
    assert main(args(tiny_ckpt, out, "--x", "-1:1:5", "--y", "-1:1:3", "--device", "cpu")) == 0
    np.testing.assert_array_equal(read_surface(out).get("train", "loss"), first)
    assert "15/15 points" in capsys.readouterr().out


def test_published_file_regenerates_its_directions(tmp_path, tiny_ckpt, capsys) -> None:
    """A file published without direction tensors (`export --publish`) is the same surface:
    its directions come back bit for bit from the checkpoint and seed, checked by hash, so
    it resumes; with another checkpoint they are refused."""
    from helpers import make_checkpoint

    from landscape import export
    from landscape.io.surface_file import has_directions, read_directions
    from landscape.surface.engine import surface_directions

    full, pub = tmp_path / "s.h5", tmp_path / "pub.h5"
    grid = ["--x", "-1:1:5", "--y", "-1:1:3", "--seed", "7"]
    assert main(args(tiny_ckpt, full, *grid)) == 0
    assert export.main([str(full), "--publish", "--out", str(pub)]) == 0
    assert not has_directions(pub) and pub.stat().st_size < full.stat().st_size / 3
    original, regenerated = read_directions(full), surface_directions(pub)
    assert original.keys() == regenerated.keys()
    for axis in original:
        for name, tensor in original[axis].items():
            assert torch.equal(regenerated[axis][name].float(), tensor), (axis, name)
    # Resuming the published file regenerates the directions and fills the missing points.
    with h5py.File(pub, "r+") as f:
        f["train_loss"][2, :] = np.nan
    assert main(args(tiny_ckpt, pub, *grid)) == 0
    np.testing.assert_array_equal(
        read_surface(pub).get("train", "loss"), read_surface(full).get("train", "loss")
    )
    # Other weights give other directions: refused by the hash, in one line.
    with h5py.File(pub, "r+") as f:
        f["train_loss"][2, :] = np.nan
    make_checkpoint(tiny_ckpt, seed=1)
    capsys.readouterr()
    assert main(args(tiny_ckpt, pub, *grid)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "differs" in err, err
    with pytest.raises(ValueError, match="directions_sha256"):
        surface_directions(pub)  # regenerated from the new weights: another hash


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--x", "-1:1"], "--x must be MIN:MAX:NUM"),
        (["--norm", "bogus"], "argument --norm: invalid choice"),
        (["--split", "val"], "--split must be train, test or train,test"),
        (["--dataset", "nosuchmodule_xyz:f"], "nosuchmodule_xyz"),
        (["--device", "cuda:7"], "--device"),
        (["--model-kwargs", "[1]"], "argument --model-kwargs: takes key=value pairs"),
        (["--ckpt3", "x.pt"], "--ckpt3 needs --ckpt2"),
        (["--batch-size", "0"], "argument --batch-size: must be between 1"),
        (["--samples", "-3"], "samples"),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path, tiny_ckpt, capsys, extra, message) -> None:
    assert main(args(tiny_ckpt, tmp_path / "s.h5", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "s.h5").exists()


def test_bad_checkpoint_and_out(tmp_path, tiny_ckpt, capsys) -> None:
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(args(tmp_path / "junk.pt", tmp_path / "s.h5")) == 2
    assert main(args(tmp_path / "missing.pt", tmp_path / "s.h5")) == 2
    assert main(args(tiny_ckpt, tmp_path / "s.txt")) == 2
    assert main(args("pretrained:nosuch", tmp_path / "s.h5")) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4
    assert "not a readable PyTorch checkpoint" in lines[0] and "does not exist" in lines[1]
    assert "--out must end in .h5" in lines[2] and "no pretrained checkpoint 'nosuch'" in lines[3]


def test_settings_mismatch_is_refused_then_overwrite(tmp_path, tiny_ckpt, capsys) -> None:
    out = tmp_path / "s.h5"
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 0
    before = out.read_bytes()
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3", "--seed", "1")) == 2
    err = capsys.readouterr().err
    assert "seed: file has 0, now 1" in err and "--overwrite" in err
    assert out.read_bytes() == before  # nothing already computed is lost
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3", "--seed", "1", "--overwrite")) == 0
    assert read_surface(out).config["seed"] == 1


def test_other_checkpoint_is_refused(tmp_path, tiny_ckpt, capsys) -> None:
    from helpers import make_checkpoint

    out = tmp_path / "s.h5"
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 0
    make_checkpoint(tiny_ckpt, seed=9)  # same path, other weights
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 2
    assert "ckpt content differs" in capsys.readouterr().err


def _cli(argv: list[str]) -> Proc:
    return Proc([PYTHON, "-m", "landscape.compute", *argv])


# 40,401 points: far more than a test ever lets one run compute, so a run is only ever
# interrupted, never finished, whatever the machine's speed.
BIG = ("--x", "-1:1:201", "--y", "-1:1:201", "--strategy", "pointwise")


@pytest.mark.child
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_and_resumes(tmp_path, tiny_ckpt, sig) -> None:
    out = tmp_path / "s.h5"
    argv = args(tiny_ckpt, out, *BIG)
    with _cli(argv) as proc:  # a point on disk: its signal handlers are in place too
        proc.wait_until(lambda: surface_points(out) > 0, what="a point on disk")
        proc.send_signal(sig)
        code, _, err = proc.finish()
    assert code == 130, err
    assert "rerun the same command to resume" in err
    first = read_surface(out)
    kept = first.computed
    assert 0 < kept.sum() < kept.size
    # The same command resumes: it keeps every point and computes new ones (and is
    # interrupted again, with the same care).
    with _cli(argv) as proc:
        proc.wait_until(lambda: surface_points(out) > kept.sum(), what="a new point on disk")
        proc.send_signal(sig)
        code, _, err = proc.finish()
    assert code == 130, err
    second = read_surface(out)
    assert second.computed[kept].all() and kept.sum() < second.computed.sum() < kept.size
    for name in first.values:
        np.testing.assert_array_equal(second.values[name][kept], first.values[name][kept])
    assert_points_match_one_process(out, argv)  # old and new points: the right values


@pytest.mark.child
def test_second_writer_is_refused(tmp_path, tiny_ckpt, capsys) -> None:
    out = tmp_path / "s.h5"
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 0
    with h5py.File(out, "r+") as f:
        f["train_loss"][0] = np.nan
    # The holder keeps the lock until its stdin closes (no time limit to guess).
    holder = subprocess.Popen(
        [
            PYTHON,
            "-c",
            "import sys; from landscape.io.surface_file import SurfaceWriter; "
            "w = SurfaceWriter(sys.argv[1]); print('locked', flush=True); sys.stdin.read()",
            str(out),
        ],
        cwd=REPO,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 2
        assert "being written by another process" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait(timeout=HANG)
    with SurfaceWriter(out):  # the lock died with its holder
        pass


def test_plot_flag_renders_default_figure(tmp_path, tiny_ckpt) -> None:
    out = tmp_path / "s.h5"
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3", "--y", "-1:1:3", "--plot")) == 0
    assert list(tmp_path.glob("s_*.png"))
