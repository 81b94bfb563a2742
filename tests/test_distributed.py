"""`torchrun -m landscape.compute`: several CPU ranks over gloo give the single-process file.

Each test starts real torchrun jobs (``--standalone``: a free port of its own)
of 2 or 3 one-thread processes on the tiny model and dataset.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import PYTHON, REPO, subprocess_env

from landscape.compute import main
from landscape.distributed import launched, rank_device
from landscape.grid import coarse_to_fine
from landscape.store import read_directions, read_surface
from landscape.surface import PendingPoints


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


def torchrun(nproc: int, cli_args: list[str]) -> subprocess.Popen:
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd += ["-m", "landscape.compute", *cli_args]
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def assert_same_surface(a: Path, b: Path) -> None:
    """Every value bit for bit, the same directions and the same settings."""
    sa, sb = read_surface(a), read_surface(b)
    assert sorted(sa.values) == sorted(sb.values)
    for name in sa.values:
        np.testing.assert_array_equal(sa.values[name], sb.values[name], err_msg=name)
    assert sa.computed.all() and sb.computed.all()
    assert sa.config == sb.config
    da, db = read_directions(a), read_directions(b)
    for axis in da:
        for name in da[axis]:
            assert torch.equal(da[axis][name], db[axis][name]), (axis, name)


def test_two_ranks_give_the_single_process_file(tmp_path, tiny_ckpt) -> None:
    grid = ("--x", "-1:1:7", "--y", "-1:1:5", "--split", "train,test")
    assert main(args(tiny_ckpt, tmp_path / "one.h5", *grid)) == 0
    code, out, err = finish(torchrun(2, args(tiny_ckpt, tmp_path / "two.h5", *grid)))
    assert code == 0, err
    assert out.count("wrote") == 1 and "35/35 points" in out  # rank 0 reports, alone
    assert_same_surface(tmp_path / "one.h5", tmp_path / "two.h5")


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


def test_settings_mismatch_stops_every_rank_with_one_message(tmp_path, tiny_ckpt) -> None:
    out = tmp_path / "s.h5"
    assert main(args(tiny_ckpt, out, "--x", "-1:1:3")) == 0
    before = out.read_bytes()
    code, _, err = finish(torchrun(2, args(tiny_ckpt, out, "--x", "-1:1:3", "--seed", "1")))
    assert code != 0
    assert err.count("seed: file has 0, now 1") == 1, err
    assert err.count("exitcode  : 2") == 2, err  # both ranks, neither left waiting
    assert out.read_bytes() == before


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


KILL_GRID = ("--x", "-1:1:15", "--y", "-1:1:15", "--strategy", "pointwise")


@pytest.fixture(scope="module")
def kill_ref(tmp_path_factory) -> tuple[Path, Path]:
    """A checkpoint and its single-process surface on `KILL_GRID`."""
    from conftest import make_checkpoint

    folder = tmp_path_factory.mktemp("kill")
    ckpt = make_checkpoint(folder / "tiny.pt")
    assert main(args(ckpt, folder / "ref.h5", *KILL_GRID)) == 0
    return ckpt, folder / "ref.h5"


def _wait_until_at_work(proc: subprocess.Popen, out: Path, find_worker) -> int:
    """The pid of rank 1 once the job has written its first points."""
    deadline, worker = time.time() + 120, None
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        worker = worker or find_worker()
        if worker and out.exists() and read_surface(out).computed.any():
            break
    assert worker is not None and proc.poll() is None, "the job ended before the kill"
    return worker


def test_killed_rank_loses_only_its_points_then_a_rerun_completes(tmp_path, kill_ref) -> None:
    ckpt, ref = kill_ref
    out = tmp_path / "s.h5"
    proc = torchrun(2, args(ckpt, out, *KILL_GRID))
    os.kill(_wait_until_at_work(proc, out, lambda: _rank_pid(proc.pid, 1)), signal.SIGKILL)
    code, _, err = finish(proc)
    assert code != 0
    # torchrun stops rank 0, which saves what arrived and says how to go on (exit 130).
    assert "rerun the same command to resume" in err, err
    partial = read_surface(out).computed
    assert 0 < partial.sum() < partial.size
    code, _, err = finish(torchrun(2, args(ckpt, out, *KILL_GRID)))
    assert code == 0, err
    assert_same_surface(ref, out)


def test_rank_lost_without_torchrun_stops_rank_0(tmp_path, kill_ref) -> None:
    """No launcher stops rank 0: it notices by itself (a closed connection or --dist-timeout)."""
    ckpt, ref = kill_ref
    out = tmp_path / "s.h5"
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
        cmd = [PYTHON, "-m", "landscape.compute", *args(ckpt, out, *KILL_GRID)]
        procs.append(
            subprocess.Popen(
                cmd + ["--dist-timeout", "0.25"],
                cwd=REPO,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    lead, worker = procs
    os.kill(_wait_until_at_work(lead, out, lambda: worker.pid), signal.SIGKILL)
    code, _, err = finish(lead, timeout=120)
    worker.communicate()
    assert code == 130, err
    assert "lost contact" in err and "rerun the same command to resume" in err
    assert read_surface(out).computed.any()  # what arrived is kept
    assert main(args(ckpt, out, *KILL_GRID)) == 0
    assert_same_surface(ref, out)


def test_pending_points_hands_out_coarse_to_fine_chunks() -> None:
    pending = np.ones((5, 3), dtype=bool)
    pending[0, 0] = False
    alpha, beta = np.linspace(-1, 1, 5), np.linspace(0, 2, 3)
    points = PendingPoints(pending, alpha, beta)
    order = [i for i in coarse_to_fine((5, 3)) if i != 0]
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
    assert rank_device("cpu", 1, 2) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert rank_device("auto", 1, 2) == torch.device("cpu")
        with pytest.raises(ValueError, match="--device cuda"):
            rank_device("cuda", 0, 2)
