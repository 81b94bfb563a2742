"""`torchrun -m landscape.compute`: several CPU ranks over gloo give the single-process file.

Each test starts real torchrun jobs (``--standalone``: a free port of its own)
of 2 or 3 one-thread processes on the tiny model and dataset.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import PYTHON, subprocess_env
from procs import Proc, surface_points
from surfaces import assert_points_match_one_process

from landscape.compute import main
from landscape.core.device import resolve_device
from landscape.io.surface_file import read_directions, read_per_sample, read_surface
from landscape.surface.distributed import launched
from landscape.surface.grid import coarse_to_fine, grid_origin
from landscape.surface.points import PendingPoints


def args(ckpt: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--ckpt",
        str(ckpt),
        "--dataset",
        "tinydata:tiny",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def torchrun(nproc: int, cli_args: list[str]) -> Proc:
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return Proc([*cmd, "-m", "landscape.compute", *cli_args])


def finish(proc: Proc) -> tuple[int, str, str]:
    with proc:
        return proc.finish()


def assert_clean_stop(err: str, code: int, nproc: int = 2) -> None:
    """Every rank exited with `code` by itself: none aborted, died by a signal or hung."""
    assert "terminate called" not in err and "Fatal Python error" not in err, err
    assert "exitcode  : -" not in err, err  # no rank ended by a signal (SIGABRT, SIGTERM)
    assert err.count(f"exitcode  : {code} ") == nproc, err
    # The launcher's own report is the one traceback: none from a rank.
    assert err.count("Traceback (most recent call last)") == 1, err


def assert_same_surface(a: Path, b: Path) -> None:
    """Every value bit for bit, the same directions and the same settings."""
    sa, sb = read_surface(a), read_surface(b)
    assert sorted(sa.values) == sorted(sb.values)
    for name in sa.values:
        np.testing.assert_array_equal(sa.values[name], sb.values[name], err_msg=name)
    assert sa.computed.all() and sb.computed.all()
    for split in sa.splits:  # every sample's loss too (sent by the ranks beside the means)
        pa, pb = read_per_sample(a, split), read_per_sample(b, split)
        assert pa is not None and pb is not None
        np.testing.assert_array_equal(pa, pb, err_msg=f"per-sample {split}")
    assert sa.config == sb.config
    da, db = read_directions(a), read_directions(b)
    for axis in da:
        for name in da[axis]:
            assert torch.equal(da[axis][name], db[axis][name]), (axis, name)


@pytest.mark.child
def test_two_ranks_give_the_single_process_file(tmp_path, tiny_ckpt) -> None:
    grid = ("--x", "-1:1:7", "--y", "-1:1:5", "--split", "train,test")
    assert main(args(tiny_ckpt, tmp_path / "one.h5", *grid)) == 0
    code, out, err = finish(torchrun(2, args(tiny_ckpt, tmp_path / "two.h5", *grid)))
    assert code == 0, err
    assert out.count("wrote") == 1 and "35/35 points" in out  # rank 0 reports, alone
    assert_same_surface(tmp_path / "one.h5", tmp_path / "two.h5")


@pytest.mark.child
def test_resume_with_another_world_size(tmp_path, tiny_ckpt) -> None:
    grid = ("--x", "-1:1:25", "--strategy", "pointwise")
    ref, out = tmp_path / "ref.h5", tmp_path / "s.h5"
    assert main(args(tiny_ckpt, ref, *grid)) == 0
    # A file left half done by one process is finished by three.
    out.write_bytes(ref.read_bytes())
    with h5py.File(out, "r+") as f:
        f["train_loss"][3:20] = np.nan
        f["train_accuracy"][10:12] = np.nan
    code, _, err = finish(torchrun(3, args(tiny_ckpt, out, *grid)))
    assert code == 0, err
    assert_same_surface(ref, out)


@pytest.mark.child
def test_settings_mismatch_stops_every_rank_with_one_message(tmp_path, tiny_ckpt) -> None:
    out = tmp_path / "s.h5"
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 0
    before = out.read_bytes()
    code, _, err = finish(torchrun(2, args(tiny_ckpt, out, "--x", "-1:1:3", "--seed", "1")))
    assert code != 0
    assert err.count("seed: file has 0, now 1") == 1, err
    assert err.count("error:") == 1, err  # one line between them
    assert_clean_stop(err, 2)  # both ranks, neither left waiting
    assert out.read_bytes() == before


@pytest.mark.child
@pytest.mark.parametrize("nproc", [2, 3])
def test_one_rank_refusing_stops_every_rank_with_one_message(tmp_path, tiny_ckpt, nproc) -> None:
    """Bad input on rank 1 alone: rank 0 says so in one line, every rank exits 2."""
    out = tmp_path / "s.h5"
    cli = args(tiny_ckpt, out, "--x", "-1:1:3")
    cli[cli.index("tinydata:tiny")] = "tinydata:refused_on_rank_1"
    code, _, err = finish(torchrun(nproc, cli))
    assert code != 0
    lines = [line for line in err.splitlines() if "error:" in line]
    assert lines == [
        "landscape compute: error: rank 1: tinydata: rank 1 refuses this dataset; use tinydata:tiny"
    ], err
    assert_clean_stop(err, 2, nproc)
    assert not out.exists()


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of `rank` among the processes torchrun started (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in env:
            return int(entry.name)
    return None


# 40,401 points: a job is only ever stopped (a rank killed, rank 0 interrupted) by the
# test, never finished, whatever the machine's speed.
KILL_GRID = ("--x", "-1:1:201", "--y", "-1:1:201", "--strategy", "pointwise")


def _at_work(proc: Proc, out: Path, find_worker) -> int:
    """The pid of the worker once the job has written points (so every rank computes)."""
    proc.wait_until(lambda: surface_points(out) > 0, what="points on disk")
    worker = find_worker()
    assert worker is not None
    return worker


def _assert_resumable(out: Path, cli: list[str], kept=None) -> np.ndarray:
    """The file is consistent and part done; what it holds is single-process exact."""
    s = read_surface(out)
    assert 0 < s.computed.sum() < s.computed.size
    if kept is not None:  # a resumed run keeps what was there
        assert s.computed[kept.computed].all() and s.computed.sum() > kept.computed.sum()
        for name in kept.values:
            np.testing.assert_array_equal(
                s.values[name][kept.computed], kept.values[name][kept.computed]
            )
    assert_points_match_one_process(out, cli)
    return s


@pytest.mark.child
def test_killed_rank_loses_only_its_points_then_a_rerun_resumes(tmp_path, tiny_ckpt) -> None:
    out = tmp_path / "s.h5"
    cli = args(tiny_ckpt, out, *KILL_GRID)
    with torchrun(2, cli) as proc:
        os.kill(_at_work(proc, out, lambda: _rank_pid(proc.pid, 1)), signal.SIGKILL)
        code, _, err = proc.finish()
    assert code != 0
    # torchrun stops rank 0, which saves what arrived and says how to go on (exit 130).
    assert "rerun the same command to resume" in err, err
    assert "terminate called" not in err, err
    kept = _assert_resumable(out, cli)
    # The same command resumes; interrupting its rank 0 stops the job cleanly: the
    # worker sends back what it holds, and every rank exits 130.
    with torchrun(2, cli) as proc:
        proc.wait_until(lambda: surface_points(out) > kept.computed.sum(), what="new points")
        lead = _rank_pid(proc.pid, 0)
        assert lead is not None
        os.kill(lead, signal.SIGTERM)
        code, _, err = proc.finish()
    assert code != 0
    assert err.count("rerun the same command to resume") == 1, err
    assert_clean_stop(err, 130)
    _assert_resumable(out, cli, kept)


@pytest.mark.child
def test_rank_lost_without_torchrun_stops_rank_0(tmp_path, tiny_ckpt) -> None:
    """No launcher stops rank 0: it notices by itself (a closed connection or --dist-timeout)."""
    out = tmp_path / "s.h5"
    cli = args(tiny_ckpt, out, *KILL_GRID)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = subprocess_env() | {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": "2",
        }
        cmd = [PYTHON, "-m", "landscape.compute", *cli, "--dist-timeout", "0.25"]
        procs.append(Proc(cmd, env=env))
    lead, worker = procs
    with lead, worker:
        os.kill(_at_work(lead, out, lambda: worker.pid), signal.SIGKILL)
        code, _, err = lead.finish()
        worker.finish()
    assert code == 130, err
    assert "lost contact" in err and "rerun the same command to resume" in err
    assert "terminate called" not in err, err
    _assert_resumable(out, cli)  # what arrived is kept, single-process exact


def test_pending_points_hands_out_coarse_to_fine_chunks() -> None:
    pending = np.ones((5, 3), dtype=bool)
    pending[0, 0] = False
    alpha, beta = np.linspace(-1, 1, 5), np.linspace(0, 2, 3)
    points = PendingPoints(pending, alpha, beta)
    order = [i for i in coarse_to_fine((5, 3), grid_origin(alpha, beta)) if i != 0]
    got = []
    while (chunk := points.take(4)) is not None:
        flat, coords = chunk
        np.testing.assert_array_equal(coords[:, 0], alpha[flat // 3])
        np.testing.assert_array_equal(coords[:, 1], beta[flat % 3])
        got += flat.tolist()
    assert got == order and len(points) == 0


def test_launch_detection_and_rank_devices(monkeypatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not launched()
    monkeypatch.setenv("RANK", "1")
    assert launched()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched()

    def rank_device(name: str, local_rank: int, local_world_size: int) -> torch.device:
        return resolve_device(name, local_rank=local_rank, local_world_size=local_world_size)

    assert rank_device("cpu", 1, 2) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert rank_device("auto", 1, 2) == torch.device("cpu")
        with pytest.raises(ValueError, match="device=.cuda.: no CUDA GPU here"):
            rank_device("cuda", 0, 2)


@pytest.mark.child
def test_adaptive_refinement_under_two_ranks_gives_the_single_process_file(
    tmp_path, tiny_ckpt
) -> None:
    """--tolerance with 2 ranks: rank 0 plans each level once every point out is back,
    the worker is told to wait meanwhile (never that the grid is done), and the file is
    the single-process one: the same points evaluated, the same predictions."""
    grid = (
        "--x",
        "-0.3:0.3:17",
        "--y",
        "-0.3:0.3:17",
        "--tolerance",
        "0.05",
        "--strategy",
        "pointwise",
    )
    assert main(args(tiny_ckpt, tmp_path / "one.h5", *grid)) == 0
    code, out, err = finish(torchrun(2, args(tiny_ckpt, tmp_path / "two.h5", *grid)))
    assert code == 0, err
    one, two = read_surface(tmp_path / "one.h5"), read_surface(tmp_path / "two.h5")
    assert one.interpolated is not None and one.interpolated.any()
    np.testing.assert_array_equal(one.interpolated, two.interpolated)
    for name in one.values:
        np.testing.assert_allclose(two.values[name], one.values[name], rtol=1e-6, err_msg=name)
