"""Hostile files run no code: checkpoints, CIFAR pickles and HDF5 files are read as data,
and user plugins are imported only when named. (HTML escaping: tests/test_viewer.py.)"""

from __future__ import annotations

import os
import pickle
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from surfaces import make_surface_file

import models
from landscape import compute, data, plot
from landscape.store import StoreError, read_surface

REPO = Path(__file__).parent.parent


class Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_code_is_refused_and_not_run(tmp_path, capsys):
    marker, evil = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "extra": Payload(marker)}, evil)
    with pytest.raises(models.CheckpointError, match="holds objects other than weights"):
        models.load_checkpoint(evil, model_name="resnet20")
    argv = ["--ckpt", str(evil), "--dataset", "tinydata:tiny", "--out", str(tmp_path / "s.h5")]
    assert compute.main([*argv, "--x", "-1:1:3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "system" in err and "re-save it" in err
    assert not marker.exists() and not (tmp_path / "s.h5").exists()


def test_every_torch_load_is_weights_only():
    calls = []
    for path in [*REPO.glob("landscape/**/*.py"), *REPO.glob("models/**/*.py")]:
        calls += re.findall(r"torch\.load\([^)]*\)", path.read_text())
    assert calls and all("weights_only=True" in c for c in calls), calls


def test_cifar_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker, evil = tmp_path / "ran", tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "x": Payload(marker)}))
    with pytest.raises(data.DataError, match="posix.system|os.system"):
        data._unpickle(evil)
    assert not marker.exists()
    good = tmp_path / "batch"
    good.write_bytes(pickle.dumps({"data": np.ones((2, 3072), np.uint8), "labels": [0, 1]}))
    assert data._unpickle(good)["labels"] == [0, 1]


def test_hdf5_content_is_never_unpickled_or_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    payload = np.void(pickle.dumps(Payload(marker)))
    path = make_surface_file(tmp_path, "s.h5", shape=(5, 4))
    with h5py.File(path, "r+") as f:
        f.attrs["config"] = payload  # a pickle where JSON belongs
    with pytest.raises(StoreError, match="damaged"):
        read_surface(path)
    path2 = make_surface_file(tmp_path, "s2.h5", shape=(5, 4))
    with h5py.File(path2, "r+") as f:
        del f["train_loss"]
        f["train_loss"] = np.full((5, 4), payload)  # opaque bytes instead of numbers
    assert plot.main([str(path2)]) == 2
    assert "damaged" in capsys.readouterr().err
    assert not marker.exists()


def test_plugins_are_imported_only_when_named(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "sneaky_plugin.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "import torch\n"
        "def tiny(split):\n"
        "    return torch.zeros(4, 3, 8, 8), torch.arange(4) % 2\n"
        "def net(num_classes=10):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    models.list_models()
    models.create_model("resnet20")
    data.load_split("tinydata:tiny", "train")
    assert "sneaky_plugin" not in sys.modules and not marker.exists()
    data.load_split("sneaky_plugin:tiny", "train")  # named by the user: imported
    assert marker.exists()
    assert models.create_model("sneaky_plugin:net", num_classes=2)(
        torch.zeros(1, 3, 8, 8)
    ).shape == (1, 2)
    monkeypatch.delitem(sys.modules, "sneaky_plugin")


def test_file_names_are_escaped_in_the_viewer(tmp_path):
    from landscape import viewer

    path = make_surface_file(tmp_path, "<script>alert(2)<!--.h5", shape=(5, 4))
    page = viewer.build_viewer_html([read_surface(path)])
    assert "<script>alert(2)" not in page and "&lt;script&gt;alert(2)" in page
