"""Damaged and foreign files at the boundary: every reading command refuses each one with
exit 2 and one line naming the file and what is wrong, and leaves it byte-for-byte as it was.

A table of damages to a valid surface file, checkpoint and directions file, each applied to
a fresh copy and run through every command that reads that kind of file (issue #22).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from surfaces import edit_dataset, replace_dataset

from landscape import compute, eigendirs, export, hessian, metrics, models, plot, responses, view

DATA = ["--dataset", "tinydata:tiny", "--samples", "8"]
GRID = ["--x", "-1:1:5", "--y", "-1:1:4"]


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    """A valid checkpoint, surface file (2-D, with directions) and directions file."""
    root = tmp_path_factory.mktemp("originals")
    ckpt = make_checkpoint(root / "m.pt")
    surface = root / "s.h5"
    argv = ["--ckpt", str(ckpt), *DATA, *GRID, "--out", str(surface), "--quiet"]
    assert compute.main(argv) == 0
    dirs = root / "dirs.h5"
    argv = ["--ckpt", str(ckpt), *DATA, "--iters", "3", "--out", str(dirs)]
    assert eigendirs.main(argv) == 0
    return {"ckpt": ckpt, "surface": surface, "dirs": dirs}


# ------------------------------------------------------------------ damages


def _attr(name: str, value) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            if value is None:
                del f.attrs[name]
            else:
                f.attrs[name] = value

    return damage


def _first_direction(path: Path, axis: str = "x") -> str:
    with h5py.File(path, "r") as f:
        return f"directions/{axis}/{next(iter(f['directions'][axis]))}"


def _direction_edit(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        edit_dataset(_first_direction(path), fn)(path)

    return damage


def _direction_replace(value) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        replace_dataset(_first_direction(path), value)(path)

    return damage


def _bytes(fn: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        path.write_bytes(fn(path.read_bytes()))

    return damage


def _flip(offset: int) -> Callable[[bytes], bytes]:
    return lambda b: b[:offset] + bytes([b[offset] ^ 0xFF]) + b[offset + 1 :]


def _grid_value(v: np.ndarray, at: int, value: float) -> np.ndarray:
    v = v.copy()
    v[at] = value
    return v


def _huge_grid(path: Path) -> None:
    """A small file declaring 20,000 x 1,000 = 2e7 grid points (more than a surface has):
    arrays never written (chunked, nothing stored), the coordinates compressed. Refused
    before anything is allocated (60,000 x 50,000 would need 22 GiB: a MemoryError)."""
    with h5py.File(path, "r+") as f:
        for name in list(f):
            if name != "directions":
                del f[name]
        for name, n in (("alpha", 20_000), ("beta", 1_000)):
            f.create_dataset(name, data=np.arange(n, dtype=np.int32), compression="gzip")
        for name in ("train_loss", "train_accuracy"):
            f.create_dataset(name, shape=(20_000, 1_000), dtype=np.float64, chunks=(100, 100))


SURFACE_DAMAGES: dict[str, Callable[[Path], None]] = {
    "config-json-list": _attr("config", json.dumps([1, 2])),
    "config-json-null": _attr("config", "null"),
    "config-json-number": _attr("config", "3"),
    "config-not-json": _attr("config", "{oops"),
    "config-a-number": _attr("config", 7),
    "provenance-json-list": _attr("provenance", "[]"),
    "provenance-not-json": _attr("provenance", "not json"),
    "format-other": _attr("format", "something-else"),
    "format-an-array": _attr("format", np.array([b"landscape-surface", b"landscape-surface"])),
    "format-numbers": _attr("format", np.arange(3)),
    "config-json-nested-200000-deep": _attr("config", "[" * 200_000 + "]" * 200_000),
    "provenance-json-nested-deep": _attr("provenance", '{"a":' * 100_000 + "1" + "}" * 100_000),
    "grid-of-2e7-points": _huge_grid,
    "format-missing": _attr("format", None),
    "alpha-2d": replace_dataset("alpha", np.zeros((5, 2))),
    "alpha-strings": replace_dataset("alpha", np.array([b"a", b"b", b"c", b"d", b"e"])),
    "alpha-missing": replace_dataset("alpha", None),
    "alpha-a-group": replace_dataset("alpha", "group"),
    "alpha-nan": edit_dataset("alpha", lambda v: _grid_value(v, 2, np.nan)),
    "alpha-inf": edit_dataset("alpha", lambda v: _grid_value(v, 0, -np.inf)),
    "alpha-duplicated": edit_dataset("alpha", lambda v: _grid_value(v, 1, v[0])),
    "alpha-decreasing": edit_dataset("alpha", lambda v: v[::-1].copy()),
    "beta-nan": edit_dataset("beta", lambda v: _grid_value(v, 1, np.nan)),
    "beta-empty": replace_dataset("beta", np.zeros(0)),
    "loss-missing": replace_dataset("train_loss", None),
    "loss-a-group": replace_dataset("train_loss", "group"),
    "loss-wrong-shape": replace_dataset("train_loss", np.zeros((3, 3))),
    "loss-strings": replace_dataset("train_loss", np.full((5, 4), b"x")),
    "accuracy-wrong-shape": replace_dataset("train_accuracy", np.zeros(20)),
    "extra-group": replace_dataset("notes", "group"),
    "directions-a-dataset": replace_dataset("directions", np.zeros(3)),
    "directions-axis-z": lambda p: replace_dataset("directions/z", "group")(p),
    "direction-nan": _direction_edit(lambda v: np.full_like(v, np.nan)),
    "direction-edited": _direction_edit(lambda v: v + 1.0),
    "direction-strings": _direction_replace(np.array([b"a", b"b"])),
    "direction-in-subgroup": _direction_replace("group"),
    "direction-y-missing-x": lambda p: replace_dataset("directions/x", None)(p),
    "bytes-superblock-flipped": _bytes(_flip(8)),
    # one flipped byte in the metadata: the heap of the text attributes (format, config)
    "bytes-attribute-heap-flipped": _bytes(lambda b: _flip(b.index(b"GCOL"))(b)),
    "bytes-truncated-half": _bytes(lambda b: b[: len(b) // 2]),
    "bytes-empty": _bytes(lambda b: b""),
    "bytes-text": _bytes(lambda b: b"alpha,beta,train_loss\n0,0,1\n"),
}


def _ckpt_dict(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _ckpt(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        obj = _ckpt_dict(path)
        fn(obj)
        torch.save(obj, path)

    return damage


def _set(key: str, value) -> Callable[[dict], None]:
    return lambda obj: obj.__setitem__(key, value)


def _tensor(fn: Callable[[dict], None]) -> Callable[[dict], None]:
    return lambda obj: fn(obj["state_dict"])


def _reshape_first(sd: dict) -> None:
    name = next(iter(sd))
    sd[name] = torch.zeros(3, 3)


CHECKPOINT_DAMAGES: dict[str, Callable[[Path], None]] = {
    "ckpt-model-kwargs-list": _ckpt(_set("model_kwargs", [1, 2])),
    "ckpt-metrics-list": _ckpt(_set("metrics", [0.5])),
    "ckpt-dataset-string": _ckpt(_set("dataset", "cifar10")),
    "ckpt-state-dict-list": _ckpt(_set("state_dict", [1, 2])),
    "ckpt-state-dict-string-value": _ckpt(_tensor(lambda sd: sd.__setitem__("fc.bias", "x"))),
    "ckpt-model-a-number": _ckpt(_set("model", 20)),
    "ckpt-model-names-code": _ckpt(_set("model", "os:system")),
    "ckpt-format-version-99": _ckpt(_set("format_version", 99)),
    "ckpt-no-state-dict": _ckpt(lambda obj: obj.pop("state_dict")),
    "ckpt-tensor-mis-shaped": _ckpt(_tensor(_reshape_first)),
    "ckpt-tensor-missing": _ckpt(_tensor(lambda sd: sd.pop(next(iter(sd))))),
    "ckpt-nan-weight": _ckpt(_tensor(lambda sd: sd["fc.weight"].fill_(float("nan")))),
    "ckpt-truncated": _bytes(lambda b: b[: len(b) // 2]),
    "ckpt-empty": _bytes(lambda b: b""),
    "ckpt-text": _bytes(lambda b: b"my notes\n"),
    "ckpt-a-list": lambda p: torch.save([torch.zeros(1)], p),
}

DIRECTIONS_DAMAGES: dict[str, Callable[[Path], None]] = {
    "dirs-nan": _direction_edit(lambda v: np.full_like(v, np.nan)),
    "dirs-edited": _direction_edit(lambda v: v + 1.0),
    "dirs-x-missing": lambda p: replace_dataset("directions/x", None)(p),
    "dirs-mis-shaped": _direction_replace(np.zeros((2, 2), np.float32)),
    "dirs-strings": _direction_replace(np.array([b"a"])),
    "dirs-no-group": replace_dataset("directions", None),
    "dirs-truncated": _bytes(lambda b: b[: len(b) // 3]),
}

# ------------------------------------------------------------------ readers


def _surface_readers(ckpt: Path, path: Path, tmp: Path) -> dict[str, tuple]:
    resume = ["--ckpt", str(ckpt), *DATA, *GRID, "--out", str(path), "--quiet"]
    return {
        "plot": (plot.main, [str(path), "--out", str(tmp / "f.png")]),
        "view": (view.main, [str(path), "--out", str(tmp / "v.html")]),
        "metrics": (metrics.main, [str(path)]),
        "export": (export.main, [str(path), "--csv", "--out", str(tmp / "t.csv")]),
        "compute-resume": (compute.main, resume),
        "hessian-surface": (
            hessian.main,
            ["--surface", str(path), "--ckpt", str(ckpt), *DATA, "--iters", "2", "--quiet"],
        ),
    }


def _ckpt_readers(path: Path, tmp: Path) -> dict[str, tuple]:
    return {
        "compute": (
            compute.main,
            ["--ckpt", str(path), *DATA, "--x", "-1:1:3", "--out", str(tmp / "s.h5"), "--quiet"],
        ),
        "hessian": (
            hessian.main,
            [
                "--ckpt",
                str(path),
                *DATA,
                "--iters",
                "3",
                "--top-k",
                "1",
                "--out",
                str(tmp / "h.json"),
            ],
        ),
        "responses": (responses.main, [str(path), *DATA, "--out", str(tmp / "r.json")]),
        "eigendirs": (
            eigendirs.main,
            ["--ckpt", str(path), *DATA, "--iters", "3", "--out", str(tmp / "e.h5")],
        ),
    }


def _dirs_readers(ckpt: Path, path: Path, tmp: Path) -> dict[str, tuple]:
    out = str(tmp / "from_dirs.h5")
    argv = ["--ckpt", str(ckpt), *DATA, *GRID, "--directions", str(path), "--norm", "none"]
    return {"compute-directions": (compute.main, [*argv, "--out", out, "--quiet"])}


CASES = (
    [("surface", d, r) for d in SURFACE_DAMAGES for r in _surface_readers(*[Path()] * 3)]
    + [("ckpt", d, r) for d in CHECKPOINT_DAMAGES for r in _ckpt_readers(*[Path()] * 2)]
    + [("dirs", d, r) for d in DIRECTIONS_DAMAGES for r in _dirs_readers(*[Path()] * 3)]
)


def test_the_table_is_large() -> None:
    damages = len(SURFACE_DAMAGES) + len(CHECKPOINT_DAMAGES) + len(DIRECTIONS_DAMAGES)
    assert damages >= 40 and len(CASES) >= 200


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.mark.parametrize(("kind", "damage", "reader"), CASES, ids=[f"{d}-{r}" for _, d, r in CASES])
def test_a_damaged_file_is_refused_and_left_unchanged(
    originals, tmp_path, capsys, kind, damage, reader
) -> None:
    work = tmp_path / "in"
    work.mkdir()
    ckpt = originals["ckpt"]  # the surface's own checkpoint (its config names this path)
    if kind == "surface":
        path = work / "s.h5"
        shutil.copy(originals["surface"], path)
        SURFACE_DAMAGES[damage](path)
        main, argv = _surface_readers(ckpt, path, tmp_path)[reader]
    elif kind == "ckpt":
        path = work / "m.pt"
        shutil.copy(ckpt, path)
        CHECKPOINT_DAMAGES[damage](path)
        main, argv = _ckpt_readers(path, tmp_path)[reader]
    else:
        path = work / "dirs.h5"
        shutil.copy(originals["dirs"], path)
        DIRECTIONS_DAMAGES[damage](path)
        main, argv = _dirs_readers(ckpt, path, tmp_path)[reader]
    before = {p.name: _sha(p) for p in work.iterdir()}
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert path.name in lines[0] or "model" in lines[0], lines[0]  # names the file or part
    assert {p.name: _sha(p) for p in work.iterdir()} == before  # byte-for-byte unchanged
    assert not [p for p in tmp_path.iterdir() if p.name != "in"]  # nothing written


def test_a_valid_file_passes_every_reader(originals, tmp_path) -> None:
    """The table's readers accept the undamaged files (so each case tests its damage)."""
    work = tmp_path / "in"
    work.mkdir()
    for name in ("s.h5", "dirs.h5"):
        shutil.copy(originals[{"s.h5": "surface", "dirs.h5": "dirs"}[name]], work)
    ckpt, surface, dirs = originals["ckpt"], work / "s.h5", work / "dirs.h5"
    readers = {
        **_surface_readers(ckpt, surface, tmp_path),
        **_ckpt_readers(ckpt, tmp_path),
        **_dirs_readers(ckpt, dirs, tmp_path),
    }
    for name, (main, argv) in readers.items():
        assert main(argv) == 0, name


def test_plugin_outputs_and_sizes_are_refused_in_one_line(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "badplugins.py").write_text(
        "import torch\n"
        "def gray(split):\n"
        "    return torch.randn(4, 1, 8, 8), torch.arange(4)\n"
        "def flat(split):\n"
        "    return torch.randn(4, 192), torch.arange(4)\n"
        "def negative(split):\n"
        "    return torch.randn(4, 3, 8, 8), torch.tensor([0, -1, 2, 3])\n"
        "def too_high(split):\n"
        "    return torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 99])\n"
        "def strings(split):\n"
        "    return torch.randn(2, 3, 8, 8).numpy(), ['cat', 'dog']\n"
        "class Dicts(torch.utils.data.Dataset):\n"
        "    def __len__(self):\n"
        "        return 2\n"
        "    def __getitem__(self, i):\n"
        "        return {'image': torch.zeros(3, 8, 8), 'label': 0}\n"
        "def dicts(split):\n"
        "    return Dicts()\n"
        "def scalar(split):\n"
        "    return torch.arange(4.0), torch.arange(4)\n"
        "def builder_tuple(num_classes=10):\n"
        "    return (torch.nn.Linear(2, 2),)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = make_checkpoint(tmp_path / "m.pt")
    base = ["--ckpt", str(ckpt), "--x", "-1:1:3", "--out", str(tmp_path / "s.h5"), "--quiet"]
    cases = {
        "gray": "cannot take the inputs",
        "flat": "cannot take the inputs",
        "negative": "labels go down to -1",
        "too_high": "go up to 99",
        "strings": "dtype",
        "dicts": "(x, y) pair",
        "scalar": "cannot take the inputs",
    }
    for fn, message in cases.items():
        assert compute.main([*base, "--dataset", f"badplugins:{fn}"]) == 2, fn
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (fn, lines)
    argv = ["--model", "badplugins:builder_tuple", "--dataset", "tinydata:tiny"]
    train_argv = [*argv, "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]
    from landscape import train

    assert train.main(train_argv) == 2
    assert "not nn.Module" in capsys.readouterr().err
    # Absurd sizes are refused before anything is allocated.
    kwargs = '{"width": 1000000}'
    assert compute.main([*base, "--dataset", "tinydata:tiny", "--model-kwargs", kwargs]) == 2
    assert "parameters" in capsys.readouterr().err
    huge = ["--x", "-1:1:1000000", "--y", "-1:1:1000000"]
    assert compute.main([*base[:2], *huge, "--dataset", "tinydata:tiny", *base[4:]]) == 2
    assert "at most 10,000,000" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()


def test_out_equal_to_ckpt_through_a_symlink_is_refused(tmp_path, capsys) -> None:
    ckpt = make_checkpoint(tmp_path / "m.pt")
    link = tmp_path / "link.h5"
    link.symlink_to(ckpt)
    before = _sha(ckpt)
    for extra in ([], ["--overwrite"]):
        argv = ["--ckpt", str(ckpt), *DATA, "--x", "-1:1:3", "--out", str(link), *extra]
        assert compute.main(argv) == 2
        assert "also an input" in capsys.readouterr().err
    assert _sha(ckpt) == before and link.is_symlink()


def test_resume_into_edited_coordinates_or_directions_is_refused(originals, tmp_path, capsys):
    for name, damage, message in (
        ("coords", edit_dataset("alpha", lambda v: v * 1.1), "alpha differs from the grid"),
        ("dirs", _direction_edit(lambda v: v + 1.0), "directions_sha256"),
    ):
        path = tmp_path / f"{name}.h5"
        shutil.copy(originals["surface"], path)
        with h5py.File(path, "r+") as f:  # as if interrupted: points left to compute
            loss = f["train_loss"][()]
            loss[0] = np.nan
            f["train_loss"][...] = loss
        damage(path)
        before = _sha(path)
        argv = ["--ckpt", str(originals["ckpt"]), *DATA, *GRID, "--out", str(path), "--quiet"]
        assert compute.main(argv) == 2
        assert message in capsys.readouterr().err
        assert _sha(path) == before


def test_models_package_imports_nothing_from_landscape() -> None:
    import ast

    for path in Path(models.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "landscape" for n in names), path


def test_per_sample_losses_of_another_sample_count_are_refused(originals, tmp_path, capsys):
    """Issue #35, item 7: a per-sample array disagreeing with the file's sample count (or its
    grid) gave intervals of other samples (`center_loss 0.1534 [0, 0]`)."""
    for name, shape in (("count", (5, 4, 3)), ("grid", (4, 5, 8))):
        path = tmp_path / f"{name}.h5"
        shutil.copy(originals["surface"], path)
        with h5py.File(path, "r+") as f:
            assert f["per_sample/train_loss"].shape == (5, 4, 8)
            del f["per_sample/train_loss"]
            f["per_sample/train_loss"] = np.zeros(shape, np.float32)
        before = _sha(path)
        assert metrics.main([str(path)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "per_sample/train_loss" in lines[0], lines
        assert ("3 samples per point" if name == "count" else "(5, 4)") in lines[0], lines
        assert _sha(path) == before


def test_a_loss_too_large_to_draw_is_one_line(originals, tmp_path, capsys):
    """Issue #35, item 9: a loss of 1e308 everywhere traced back in `plot` (its levels
    overflowed); it is one line naming vmin and vmax, and drawn once they are given;
    `metrics` and `view` (overflow warnings, absurd metrics) refuse it in one line."""
    path = tmp_path / "big.h5"
    shutil.copy(originals["surface"], path)
    with h5py.File(path, "r+") as f:
        f["train_loss"][...] = 1e308
    out = tmp_path / "big.png"
    assert plot.main([str(path), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "too large to draw" in lines[0] and "--vmax" in lines[0], lines
    assert not out.exists()
    assert plot.main([str(path), "--out", str(out), "--vmin", "0", "--vmax", "10"]) == 0
    assert out.exists()
    capsys.readouterr()
    for main, argv in (
        (metrics.main, [str(path)]),
        (view.main, [str(path), "--out", str(tmp_path / "v.html")]),
    ):
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "too large to measure" in lines[0], lines


def test_deep_json_is_a_store_error_for_the_live_reader_too(originals, tmp_path):
    """Issue #35, item 9: the live server reads the file on every request
    (`read_surface_snapshot`); JSON nested 200,000 deep is a `StoreError` there (which it
    reports and keeps its last good snapshot), never a `RecursionError`."""
    from landscape.io.surface_file import StoreError, read_surface_snapshot

    for attr in ("config", "provenance"):
        path = tmp_path / f"{attr}.h5"
        shutil.copy(originals["surface"], path)
        _attr(attr, "[" * 200_000 + "]" * 200_000)(path)
        with pytest.raises(StoreError, match=f"attribute '{attr}' is JSON nested too deep"):
            read_surface_snapshot(path)
