"""A full disk or a file-size limit while writing: exit 2, one line, and nothing lost.

A surface file is written whole when it is made (every array a compute writes is
allocated then) and afterwards only values inside it change, straight to the disk: the
file never grows. So a file-size limit or a full filesystem stops `compute` either before
the file exists or at the write that failed, with one line (never h5py's traceback and
segmentation fault), and the rerun with more room finishes to exactly the values of an
uninterrupted run. Every HDF5 output of `export` is built in memory and written whole.

Limits are real: `procs.Child` sets RLIMIT_FSIZE in a forked child (Python ignores
SIGXFSZ, so a write past the limit fails with EFBIG), and a small tmpfs is mounted in a
private mount namespace (``unshare -rm``) where the system allows it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import PYTHON, subprocess_env
from procs import HANG, compute_args, run_to_end, surface_points

from landscape import compute, export
from landscape.io.surface_file import PER_SAMPLE, read_per_sample, read_surface
from landscape.surface.points import PendingPoints


def _one_line(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "free some space" in err and "(disk full or file-size limit)" in err, err
    return err


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_same_surface(a: Path, b: Path) -> None:
    """Every value and every per-sample loss of `a` exactly as in `b`."""
    sa, sb = read_surface(a), read_surface(b)
    assert sa.values.keys() == sb.values.keys()
    for name in sa.values:
        np.testing.assert_array_equal(sa.values[name], sb.values[name], err_msg=name)
    assert sa.computed.all()
    pa, pb = read_per_sample(a), read_per_sample(b)
    assert pa is not None and pb is not None  # the small job keeps per-sample losses
    np.testing.assert_array_equal(pa, pb)


def _no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.glob(".*.tmp")], list(folder.iterdir())


@pytest.fixture
def reference(tmp_path, tiny_ckpt) -> Path:
    """The small surface computed in one uninterrupted run, without any limit."""
    ref = tmp_path / "ref" / "ref.h5"
    ref.parent.mkdir()
    code, err = run_to_end(compute.main, compute_args(tiny_ckpt, ref), tmp_path)
    assert code == 0, err
    return ref


def _partial(tmp_path: Path, tiny_ckpt: Path, out: Path, points: int) -> list[str]:
    """`out` with `points` points computed, as a compute killed then leaves it; its argv.

    The compute (13 x 11 points, pointwise: one point a write) kills itself (SIGKILL) at
    its write after the first `points`: no timing, the same state on any machine.
    """
    argv = compute_args(tiny_ckpt, out)
    code, err = run_to_end(_killed_after(compute.main, writes=points), argv, tmp_path)
    assert code == -signal.SIGKILL, err
    assert surface_points(out) == points
    return argv


def _killed_after(main, *, writes: int):
    """`main` in whose process the surface writes after the first `writes` kill it."""

    def run(argv):
        from landscape.io import surface_file

        real, calls = surface_file.SurfaceFile.write, []

        def write(self, index, values):
            if len(calls) == writes:
                os.kill(os.getpid(), signal.SIGKILL)
            calls.append(1)
            return real(self, index, values)

        surface_file.SurfaceFile.write = write
        return main(argv)

    return run


# ------------------------------------------------------------------- compute


@pytest.mark.child
def test_a_limit_too_small_for_the_new_file_writes_nothing_then_the_rerun_finishes(
    tmp_path, tiny_ckpt, reference
):
    out = tmp_path / "s.h5"
    argv = compute_args(tiny_ckpt, out)
    size = reference.stat().st_size
    # (From 4 KiB: the child's stderr goes to a file under the same limit.)
    for limit in (4096, size // 2, size - 1):  # anywhere in the file's one write
        code, err = run_to_end(compute.main, argv, tmp_path, fsize=limit)
        assert f"cannot write {str(out)!r}: File too large" in _one_line(code, err), limit
        assert not out.exists()  # no half-written file, and no temporary one
        _no_temporaries(tmp_path)
    # Exactly the file's size is enough: the file never grows after it is made.
    code, err = run_to_end(compute.main, argv, tmp_path, fsize=size)
    assert code == 0, err
    assert out.stat().st_size == size
    _assert_same_surface(out, reference)


@pytest.mark.child
def test_a_write_that_fails_midway_keeps_every_point_before_it_and_resumes(
    tmp_path, tiny_ckpt, reference
):
    """The limit inside the per-sample losses: the resumed compute writes some points, then
    a write fails (EFBIG, as on a full disk); the points before it stay, the rerun finishes."""
    out = tmp_path / "s.h5"
    argv = _partial(tmp_path, tiny_ckpt, out, points=5)  # theta* and the 4 corners
    before = read_surface(out)
    # The points in the order the resumed compute takes them; the limit: half of the row
    # of the first one (after at least 4) whose flat index exceeds every one before it.
    pending = PendingPoints(~before.computed, before.alpha, before.beta)
    order = pending.take(len(pending))[0]
    i = next(i for i in range(4, len(order)) if order[i] > order[:i].max())
    last = int(order[i])
    with h5py.File(out, "r") as f:
        ds = f[f"{PER_SAMPLE}/train_loss"]
        assert ds.chunks is None  # contiguous: a row is written where it was allocated
        row = ds.shape[-1] * ds.dtype.itemsize
        limit = ds.id.get_offset() + row * last + row // 2
    code, err = run_to_end(compute.main, argv, tmp_path, fsize=limit)
    assert f"cannot write {str(out)!r}: File too large" in _one_line(code, err)
    after = read_surface(out)  # the file opens: no metadata was touched
    assert before.computed.sum() + 4 <= after.computed.sum() < after.computed.size
    assert after.computed[before.computed].all()
    for name in before.values:  # points kept bit for bit
        np.testing.assert_array_equal(
            after.values[name][before.computed], before.values[name][before.computed]
        )
    assert not after.computed.reshape(-1)[last:].all()
    code, err = run_to_end(compute.main, argv, tmp_path)
    assert code == 0, err
    _assert_same_surface(out, reference)


@pytest.mark.child
def test_a_file_with_compressed_per_sample_chunks_is_made_whole_before_a_resume(
    tmp_path, tiny_ckpt, reference
):
    """Files of earlier versions keep per-sample losses in gzip chunks, which grow the file
    as points are written: resuming rewrites them allocated first (atomically, under the
    writers' lock), and a limit too small for that leaves the file byte-identical."""
    out = tmp_path / "s.h5"
    argv = _partial(tmp_path, tiny_ckpt, out, points=3)
    with h5py.File(out, "r+") as f:  # the layout those versions wrote
        name = f"{PER_SAMPLE}/train_loss"
        data = f[name][()]
        del f[name]
        f.create_dataset(
            name, data=data, chunks=(1, 1, data.shape[-1]), compression="gzip", fillvalue=np.nan
        )
    kept, digest = read_surface(out), _sha(out)
    code, err = run_to_end(compute.main, argv, tmp_path, fsize=out.stat().st_size)
    _one_line(code, err)
    assert _sha(out) == digest
    _no_temporaries(tmp_path)
    code, err = run_to_end(compute.main, argv, tmp_path)
    assert code == 0, err
    with h5py.File(out, "r") as f:
        assert f[f"{PER_SAMPLE}/train_loss"].chunks is None
    _assert_same_surface(out, reference)
    assert read_surface(out).computed[kept.computed].all()


@pytest.mark.child
def test_the_python_api_raises_one_oserror_naming_the_file(tmp_path, tiny_ckpt, reference):
    """`compute_surface` under the limit: an `OSError` (EFBIG) naming `out`, nothing else."""
    out = tmp_path / "api.h5"

    def run(argv):
        from tinydata import tiny

        import landscape as ls

        model = ls.load_model(str(tiny_ckpt)).model
        config = ls.SurfaceConfig(x=(-1, 1, 13), y=(-1, 1, 11), device="cpu")
        try:
            ls.compute_surface(model, {"train": tiny("train")}, config, out=out, progress=False)
        except OSError as e:
            print(f"{type(e).__name__} {e.errno == errno.EFBIG} {e.filename}", file=sys.stderr)
            return 3
        return 0

    code, err = run_to_end(run, [], tmp_path, fsize=reference.stat().st_size // 2)
    assert (code, err) == (3, f"OSError True {out}\n")
    assert not out.exists()
    _no_temporaries(tmp_path)


# -------------------------------------------------------------------- export


@pytest.mark.child
@pytest.mark.parametrize("fmt", ["--legacy", "--publish", "--csv", "--vtk"])
def test_export_under_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path, reference, fmt):
    suffix = {"--csv": ".csv", "--vtk": ".vts"}.get(fmt, ".h5")
    dest = tmp_path / f"out{suffix}"
    argv = [str(reference), fmt, "--out", str(dest)]
    for limit in (2048, 4096):
        code, err = run_to_end(export.main, argv, tmp_path, fsize=limit)
        assert f"cannot write {str(dest)!r}" in _one_line(code, err)
        assert not dest.exists()
        _no_temporaries(tmp_path)
    code, err = run_to_end(export.main, argv, tmp_path)
    assert code == 0 and dest.is_file(), err


@pytest.mark.child
def test_a_curvature_map_added_under_a_limit_leaves_the_surface_as_it_was(tmp_path):
    """``hessian --surface`` adds its map to a copy of the surface file: under a limit, an
    `OSError` (EFBIG) and the surface byte-identical (no HDF5 write to the disk to crash)."""
    from surfaces import make_surface_file

    from landscape.io.curvature import write_curvature_map

    path = make_surface_file(tmp_path, "s.h5", shape=(9, 7))
    digest = _sha(path)

    def run(argv):
        try:
            write_curvature_map(path, np.ones((9, 7)), attrs={"iters": 5})
        except OSError as e:
            print(f"{type(e).__name__} {e.errno}", file=sys.stderr)
            return 3
        return 0

    code, err = run_to_end(run, [], tmp_path, fsize=path.stat().st_size)
    assert (code, err) == (3, f"OSError {errno.EFBIG}\n")
    assert _sha(path) == digest
    _no_temporaries(tmp_path)
    assert run_to_end(run, [], tmp_path)[0] == 0
    assert "train_curvature_ratio" in read_surface(path).values


# ---------------------------------------------------- a small full filesystem

_MOUNT = r"""
set -e
mount -t tmpfs -o size="$1" tmpfs "$2"
shift 2
out="$1"; keep="$2"; shift 2
set +e
"$@"
code=$?
df -k "$(dirname "$out")" | tail -1 > "$keep.df"
ls -A "$(dirname "$out")" > "$keep.ls"
if [ -f "$out" ]; then cp "$out" "$keep"; fi
exit $code
"""


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    (tmp_path / "probe").mkdir()
    probe = ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}/probe"]
    return subprocess.run(probe, capture_output=True, timeout=HANG).returncode == 0


def _on_tmpfs(tmp_path: Path, size: int, argv: list[str], out: Path, keep: Path):
    """Run ``landscape compute`` with `out` on a new tmpfs of `size` bytes (in a private
    mount namespace: it vanishes with the child); the file left there is copied to `keep`."""
    mnt = out.parent
    mnt.mkdir(exist_ok=True)
    cmd = [
        "unshare", "-rm", "sh", "-c", _MOUNT, "sh", str(size), str(mnt), str(out), str(keep),
        PYTHON, "-m", "landscape.compute", *argv,
    ]  # fmt: skip
    return subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=HANG)


@pytest.mark.child
def test_a_full_small_filesystem_stops_compute_in_one_line_and_an_exact_fit_finishes(
    tmp_path, tiny_ckpt, reference
):
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("no unprivileged mount namespaces here (unshare -rm; mount -t tmpfs)")
    out, keep = tmp_path / "mnt" / "s.h5", tmp_path / "kept.h5"
    argv = compute_args(tiny_ckpt, out)
    pages = -(-reference.stat().st_size // 4096)
    # Too small by a page: nothing is written, the folder stays empty.
    run = _on_tmpfs(tmp_path, (pages - 1) * 4096, argv, out, keep)
    err = _one_line(run.returncode, run.stderr)
    assert f"cannot write {str(out)!r}: No space left on device" in err
    assert Path(f"{keep}.ls").read_text() == "" and not keep.exists()
    # Exactly the file's size: the filesystem is full from the file's creation on, and
    # every point is still written (into room allocated then).
    run = _on_tmpfs(tmp_path, pages * 4096, argv, out, keep)
    assert run.returncode == 0, run.stderr
    assert " 100% " in Path(f"{keep}.df").read_text()  # full from the start
    _assert_same_surface(keep, reference)
