"""One handle on a surface file (#28): opens of `--out` counted; links refused (#35); a
resume compares the weights and data actually evaluated (#34)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from landscape.compute import main
from landscape.core.errors import InputError
from landscape.io.surface_file import (
    StoreError,
    read_directions,
    read_surface,
    read_surface_snapshot,
)
from landscape.surface.config import SurfaceConfig
from landscape.surface.direction_policy import surface_directions
from landscape.surface.engine import compute_surface


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6), nn.BatchNorm1d(6), nn.Linear(6, 5))


def _data(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return {"train": (torch.randn(12, 3, 8, 8, generator=g), torch.arange(12) % 5)}


CONFIG = SurfaceConfig(x="-1:1:5", y="-1:1:3")


def _forget(path: Path, points: int = 2) -> None:
    """As if interrupted: the first `points` points not computed yet."""
    with h5py.File(path, "r+") as f:
        for name in ("train_loss", "train_accuracy"):
            v = f[name][()]
            v.flat[:points] = np.nan
            f[name][...] = v


def _cli(ckpt: Path, out: Path, *extra: str) -> list[str]:
    data = ["--dataset", "tinydata:tiny", "--samples", "8"]
    return ["--ckpt", str(ckpt), *data, "--x", "-1:1:3", "--out", str(out), "--quiet", *extra]


def _shas(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- opens of --out -------------------------------------------------------------------


@pytest.fixture
def count_opens(monkeypatch):
    """h5py.File wrapped: every open of a path is recorded (resolved path, mode)."""
    opens: list[tuple[Path, str]] = []
    real = h5py.File

    class Counting(real):
        def __init__(self, name, mode="r", *args, **kwargs):
            if isinstance(name, str | os.PathLike):
                opens.append((Path(name).resolve(), mode))
            super().__init__(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", Counting)

    def of(path: Path) -> int:
        n = sum(1 for p, _ in opens if p == path.resolve())
        opens.clear()
        return n

    return of


def test_compute_opens_out_at_most_twice(tmp_path, tiny_ckpt, capsys, count_opens) -> None:
    out = tmp_path / "s.h5"
    count_opens(out)
    assert main(_cli(tiny_ckpt, out)) == 0
    new = count_opens(out)
    _forget(out)
    count_opens(out)
    assert main(_cli(tiny_ckpt, out)) == 0
    resumed = count_opens(out)
    assert read_surface(out).computed.all()
    # From Python: no output check before the engine, so one open each.
    py = tmp_path / "py.h5"
    compute_surface(_net(0), _data(), CONFIG, out=py, progress=False)
    py_new = count_opens(py)
    _forget(py)
    count_opens(py)
    compute_surface(_net(0), _data(), CONFIG, out=py, progress=False)
    py_resumed = count_opens(py)
    print(f"opens of --out: new {new}, resume {resumed}; python: new {py_new}, resume {py_resumed}")
    assert new <= 2 and resumed <= 2, (new, resumed)
    assert py_new <= 2 and py_resumed <= 2, (py_new, py_resumed)


# -- links refused ----------------------------------------------------------------------


def _external(path: Path, other: Path) -> str:
    with h5py.File(path, "r+") as f:
        data = f["train_loss"][()]
        del f["train_loss"]
        with h5py.File(other, "w") as o:
            o["values"] = data
        f["train_loss"] = h5py.ExternalLink(other.name, "/values")
    return "external link"


def _soft_cycle(path: Path, other: Path) -> str:
    with h5py.File(path, "r+") as f:
        f["loop_a"] = h5py.SoftLink("/loop_b")
        f["loop_b"] = h5py.SoftLink("/loop_a")
    other.write_bytes(b"untouched")
    return "soft link"


def _soft_value(path: Path, other: Path) -> str:
    with h5py.File(path, "r+") as f:
        del f["train_accuracy"]
        f["train_accuracy"] = h5py.SoftLink("/train_loss")
    other.write_bytes(b"untouched")
    return "soft link"


def _virtual(path: Path, other: Path) -> str:
    with h5py.File(path, "r+") as f:
        data = f["train_loss"][()]
        del f["train_loss"]
        with h5py.File(other, "w") as o:
            o["values"] = data
        layout = h5py.VirtualLayout(shape=data.shape, dtype=data.dtype)
        layout[...] = h5py.VirtualSource(other.name, "values", shape=data.shape)
        f.create_virtual_dataset("train_loss", layout, fillvalue=np.nan)
    return "virtual dataset"


def _linked_directions(path: Path, other: Path) -> str:
    with h5py.File(path, "r+") as f:
        group = f["directions/x"]
        name = next(iter(group))
        data = group[name][()]
        del group[name]
        with h5py.File(other, "w") as o:
            o["d"] = data
        group[name] = h5py.ExternalLink(other.name, "/d")
    return "external link"


@pytest.mark.parametrize(
    "link", [_external, _soft_cycle, _soft_value, _virtual, _linked_directions]
)
def test_linked_files_are_refused_and_nothing_changes(tmp_path, tiny_ckpt, capsys, link) -> None:
    out = tmp_path / "s.h5"
    assert main(_cli(tiny_ckpt, out)) == 0
    _forget(out)  # points left to compute: a resume would write
    kind = link(out, tmp_path / "other.h5")
    capsys.readouterr()
    before = _shas(tmp_path)
    # The resuming path, from the command line and from Python.
    assert main(_cli(tiny_ckpt, out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and kind in err and "s.h5" in err, err
    assert "does not hold its own values" in err, err
    from landscape.core.checkpoints import load_model

    model = load_model(str(tiny_ckpt)).model
    with pytest.raises(StoreError, match=kind):
        compute_surface(model, {"train": _data()["train"]}, CONFIG, out=out, progress=False)
    # The reading path.
    for read in (read_surface, read_surface_snapshot, read_directions, surface_directions):
        with pytest.raises(StoreError, match=kind):
            read(out)
    assert _shas(tmp_path) == before  # every file byte-identical, the surface too


# -- resume compares the state and data evaluated ------------------------------------------


def test_another_in_memory_model_is_refused(tmp_path) -> None:
    out = tmp_path / "s.h5"
    first = compute_surface(_net(0), _data(), CONFIG, out=out, progress=False)
    with pytest.raises(InputError) as caught:
        compute_surface(_net(1), _data(), CONFIG, out=out, progress=False)
    text = str(caught.value)
    assert "state_sha256" in text and "parameters and buffers" in text, text
    assert "out=" in text and "overwrite=True" in text and "--" not in text, text
    # The same model resumes: the points left are computed and equal an uninterrupted run.
    _forget(out, points=4)
    again = compute_surface(_net(0), _data(), CONFIG, out=out, progress=False)
    assert again.computed.all()
    np.testing.assert_array_equal(again.get("train", "loss"), first.get("train", "loss"))
    # overwrite=True replaces it with the other model's surface.
    other = compute_surface(_net(1), _data(), CONFIG, out=out, overwrite=True, progress=False)
    assert not np.array_equal(other.get("train", "loss"), first.get("train", "loss"))


def test_a_model_changed_in_place_is_refused(tmp_path) -> None:
    out, model = tmp_path / "s.h5", _net(0)
    compute_surface(model, _data(), CONFIG, out=out, progress=False)
    _forget(out)
    with torch.no_grad():
        model[3].bias.add_(1e-3)  # trained a little further
    with pytest.raises(InputError, match="parameters and buffers"):
        compute_surface(model, _data(), CONFIG, out=out, progress=False)
    restored = _net(0)
    restored[2].running_mean.add_(1e-3)  # a buffer alone counts too
    with pytest.raises(InputError, match="parameters and buffers"):
        compute_surface(restored, _data(), CONFIG, out=out, progress=False)


def test_every_difference_is_listed(tmp_path) -> None:
    out = tmp_path / "s.h5"
    compute_surface(_net(0), _data(0), CONFIG, out=out, progress=False)
    other = SurfaceConfig(x="-1:1:5", y="-1:1:3", seed=3, norm="layer")
    with pytest.raises(InputError) as caught:
        compute_surface(_net(1), _data(1), other, out=out, progress=False)
    text = str(caught.value)
    for part in ("seed: file has 0, now 3", "norm: file has", "train samples", "state_sha256"):
        assert part in text, text
    assert "4 differences" in text and "more" not in text, text


def test_files_without_the_state_hash_still_resume(tmp_path) -> None:
    """A file written before state_sha256 was recorded resumes on its other checks."""
    out = tmp_path / "s.h5"
    first = compute_surface(_net(0), _data(), CONFIG, out=out, progress=False)
    with h5py.File(out, "r+") as f:
        prov = json.loads(f.attrs["provenance"])
        assert "state_sha256" in prov and "train" in prov["data_sha256"]
        del prov["state_sha256"]
        f.attrs["provenance"] = json.dumps(prov)
    _forget(out)
    again = compute_surface(_net(0), _data(), CONFIG, out=out, progress=False)
    np.testing.assert_array_equal(again.get("train", "loss"), first.get("train", "loss"))


def test_cli_resume_with_another_checkpoint_names_flags(tmp_path, tiny_ckpt, capsys) -> None:
    from helpers import make_checkpoint

    out = tmp_path / "s.h5"
    assert main(_cli(tiny_ckpt, out)) == 0
    _forget(out)
    other = make_checkpoint(tmp_path / "other.pt", seed=1)
    capsys.readouterr()
    assert main(_cli(other, out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "ckpt content differs" in err and "state_sha256" in err, err
    assert "--out" in err and "--overwrite" in err and "overwrite=True" not in err, err


@pytest.mark.child
def test_a_file_open_for_reading_elsewhere_is_not_called_being_written(tmp_path, capsys):
    """xarray or h5py in a notebook holds HDF5's shared lock: say so, not "being written"."""
    import subprocess
    import sys

    from landscape import compute

    out = tmp_path / "s.h5"
    args = ["--ckpt", "pretrained:resnet20", "--samples", "8", "--batch-size", "8",
            "--x=-1:1:3", "--out", str(out), "--quiet"]  # fmt: skip
    assert compute.main([*args, "--x=-1:1:3"]) == 0
    reader = subprocess.Popen(
        [sys.executable, "-c", "import h5py, sys; f = h5py.File(sys.argv[1], 'r');"
         "print('open', flush=True); sys.stdin.read()", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdout.readline().strip() == "open"  # the sign: it holds the file
        capsys.readouterr()
        assert compute.main([*args, "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert "open in another program" in err and "being written" not in err
    finally:
        reader.stdin.close()
        reader.wait(timeout=300)
