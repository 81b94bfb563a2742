"""Damaged files of the original loss-landscape code get the checks our own files get
(issue #35): every reading command refuses each one with exit 2 and one line naming the
file and the part that is wrong, leaves it byte-for-byte as it was and writes nothing;
`convert` never writes a file `landscape` would refuse.

The table of damages mirrors `test_damaged_files.SURFACE_DAMAGES`, applied to a valid file
written the way the original code writes it (`surfaces.make_legacy_file`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from surfaces import edit_dataset, make_legacy_file, replace_dataset

from landscape import compute, convert, export, metrics, plot, view
from landscape.io.surface_file import StoreError, read_surface

SHAPE = (9, 5)  # nx, ny: the values are stored (nx, ny), filled through k = j * nx + i


def _at(at: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def fn(v: np.ndarray) -> np.ndarray:
        v = v.copy()
        v[at] = value
        return v

    return fn


def _huge(name: str) -> Callable[[Path], None]:
    """A tiny file declaring an array of billions of values (never written: read, 16 GB)."""

    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            del f[name]
            f.create_dataset(name, shape=(2 * 10**9,), dtype="f8", chunks=(4096,))

    return damage


LINSPACE_X = np.linspace(-1.0, 1.0, SHAPE[0])

LEGACY_DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    # (damage, what the one line names)
    "x-strings": (replace_dataset("xcoordinates", np.array([b"a"] * SHAPE[0])), "/xcoordinates"),
    "x-a-group": (replace_dataset("xcoordinates", "group"), "/xcoordinates is a group"),
    "x-empty": (replace_dataset("xcoordinates", np.zeros(0)), "/xcoordinates"),
    "x-inf": (edit_dataset("xcoordinates", _at(0, -np.inf)), "NaN or inf"),
    "x-nan": (edit_dataset("xcoordinates", _at(3, np.nan)), "NaN or inf"),
    "x-decreasing": (
        edit_dataset("xcoordinates", lambda v: v[::-1].copy()),
        "not strictly increasing",
    ),
    "x-duplicated": (edit_dataset("xcoordinates", _at(1, -1.0)), "not strictly increasing"),
    "x-2d": (replace_dataset("xcoordinates", np.linspace(-1, 1, 9).reshape(3, 3)), "1-D"),
    "x-complex": (replace_dataset("xcoordinates", LINSPACE_X + 1j), "real numbers"),
    "x-huge": (_huge("xcoordinates"), "at most 10,000,000"),
    "y-nan": (edit_dataset("ycoordinates", _at(1, np.nan)), "/ycoordinates holds NaN"),
    "y-strings": (replace_dataset("ycoordinates", np.array([b"b"] * SHAPE[1])), "/ycoordinates"),
    "y-empty": (replace_dataset("ycoordinates", np.zeros(0)), "/ycoordinates"),
    "y-a-group": (replace_dataset("ycoordinates", "group"), "/ycoordinates is a group"),
    "loss-strings": (replace_dataset("train_loss", np.full(SHAPE, b"x")), "/train_loss holds"),
    "loss-complex": (replace_dataset("train_loss", np.ones(SHAPE) + 1j), "/train_loss holds"),
    "loss-a-group": (replace_dataset("train_loss", "group"), "/train_loss is a group"),
    "loss-wrong-size": (replace_dataset("train_loss", np.zeros((3, 3))), "/train_loss holds 9"),
    "loss-missing": (replace_dataset("train_loss", None), "no computed values"),
    "loss-huge": (_huge("train_loss"), "/train_loss holds 2000000000"),
    "acc-strings": (replace_dataset("train_acc", np.full(SHAPE, b"y")), "/train_acc holds"),
}


def _readers(path: Path, tmp: Path) -> dict[str, tuple]:
    return {
        "plot": (plot.main, [str(path), "--out", str(tmp / "f.png")]),
        "view": (view.main, [str(path), "--out", str(tmp / "v.html")]),
        "metrics": (metrics.main, [str(path)]),
        "export": (export.main, [str(path), "--csv", "--out", str(tmp / "t.csv")]),
        "convert": (convert.main, [str(path), "--out", str(tmp / "c.h5")]),
    }


CASES = [(d, r) for d in LEGACY_DAMAGES for r in _readers(Path(), Path())]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("damage", "reader"), CASES, ids=[f"{d}-{r}" for d, r in CASES])
def test_a_damaged_legacy_file_is_refused_in_one_line(tmp_path, capsys, damage, reader) -> None:
    work = tmp_path / "in"
    work.mkdir()
    path = make_legacy_file(work, "old.h5", shape=SHAPE)
    fn, expected = LEGACY_DAMAGES[damage]
    fn(path)
    before = _sha(path)
    main, argv = _readers(path, tmp_path)[reader]
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "old.h5" in lines[0] and expected in lines[0], lines[0]
    assert _sha(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["in"]  # nothing written


def test_a_valid_legacy_file_passes_every_reader(tmp_path) -> None:
    """The readers accept the undamaged file (so each case tests its damage), and what
    `convert` writes reads back by landscape's own reader."""
    work = tmp_path / "in"
    work.mkdir()
    path = make_legacy_file(work, "old.h5", shape=SHAPE, uncomputed=2)
    for name, (main, argv) in _readers(path, tmp_path).items():
        assert main(argv) == 0, name
    converted = read_surface(tmp_path / "c.h5")
    assert converted.shape == SHAPE and np.isnan(converted.get("train", "loss")).sum() == 2


def test_convert_never_writes_a_file_the_reader_refuses(tmp_path, monkeypatch) -> None:
    """Should the legacy reader ever let through what landscape's reader refuses, the
    conversion is a bug (a traceback) and `--out` is not written."""
    from landscape.io import legacy

    old = make_legacy_file(tmp_path, "old.h5", shape=SHAPE)
    out = tmp_path / "new.h5"
    real = legacy.create_surface_file

    def unsorted_alpha(path, **kwargs):  # what the reader would let through, if it erred
        kwargs["alpha"] = kwargs["alpha"][::-1].copy()
        real(path, **kwargs)

    monkeypatch.setattr(legacy, "create_surface_file", unsorted_alpha)
    with pytest.raises(RuntimeError, match="does not read back"):
        legacy.convert_legacy(old, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]


def test_a_string_tensor_in_an_original_code_direction_file_is_one_line(tmp_path, capsys) -> None:
    from helpers import make_checkpoint

    from landscape import models

    ckpt = make_checkpoint(tmp_path / "m.pt")
    shapes = [tuple(p.shape) for p in models.create_model("resnet20").parameters()]
    dirs = tmp_path / "old_dirs.h5"
    with h5py.File(dirs, "w") as f:
        for i, shape in enumerate(shapes):
            f[f"xdirection/{i}"] = torch.randn(shape).numpy()
        del f["xdirection/3"]
        f["xdirection/3"] = np.array([b"not a tensor"])
    before = _sha(dirs)
    argv = ["--ckpt", str(ckpt), "--dataset", "tinydata:tiny", "--samples", "8"]
    argv += ["--x", "-1:1:3", "--directions", str(dirs), "--out", str(tmp_path / "s.h5")]
    assert compute.main([*argv, "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "xdirection/3 holds |S12, not real numbers" in lines[0], lines
    assert _sha(dirs) == before and not (tmp_path / "s.h5").exists()
    with pytest.raises(StoreError, match="not real numbers"):
        from landscape.io.legacy import read_legacy_directions

        read_legacy_directions(dirs, [(f"p{i}", s) for i, s in enumerate(shapes)])


def test_an_array_valued_format_attribute_is_one_line(tmp_path, capsys) -> None:
    from surfaces import make_surface_file

    from landscape.io.surfaces import read_surface as read_any

    path = make_surface_file(tmp_path, "s.h5", shape=(5, 4))
    with h5py.File(path, "r+") as f:
        f.attrs["format"] = [1, 2]
    with pytest.raises(StoreError, match="is not a surface file"):
        read_any(path)
    assert plot.main([str(path), "--out", str(tmp_path / "f.png")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "s.h5" in lines[0], lines
