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

from landscape import compute, models, plot
from landscape.data import datasets as data
from landscape.io.surface_file import StoreError, read_surface

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
    from landscape.viz import viewer

    path = make_surface_file(tmp_path, "<script>alert(2)<!--.h5", shape=(5, 4))
    page = viewer.build_viewer_html([read_surface(path)])
    assert "<script>alert(2)" not in page and "\\u003cscript\\u003ealert(2)" in page


def _code_naming_checkpoint(tmp_path: Path, marker: Path) -> Path:
    """A checkpoint in the project's format whose model is a shell command (issue #23)."""
    base = models.create_model("resnet20")
    evil = tmp_path / "evil.pt"
    torch.save(
        {
            "format": "landscape-checkpoint",
            "format_version": 1,
            "model": "subprocess:getoutput",
            "model_kwargs": {"cmd": f"id > {marker}"},
            "state_dict": base.state_dict(),
            "epoch": 1,
            "metrics": {},
            "dataset": {},
        },
        evil,
    )
    return evil


def _commands_loading(evil: Path, tmp_path: Path) -> dict[str, tuple]:
    from landscape import eigendirs, hessian, responses

    data_args = ["--dataset", "tinydata:tiny", "--samples", "8"]
    return {
        "compute": (compute.main, ["--ckpt", str(evil), "--dataset", "tinydata:tiny",
                                   "--x", "-1:1:3", "--out", str(tmp_path / "s.h5"), "--quiet"]),
        "hessian": (hessian.main, ["--ckpt", str(evil), *data_args, "--iters", "3",
                                   "--top-k", "1", "--out", str(tmp_path / "h.json")]),
        "responses": (responses.main, [str(evil), *data_args, "--out", str(tmp_path / "r.json")]),
        "eigendirs": (eigendirs.main, ["--ckpt", str(evil), *data_args, "--iters", "3",
                                       "--out", str(tmp_path / "e.h5")]),
    }  # fmt: skip


@pytest.mark.parametrize("command", ["compute", "hessian", "responses", "eigendirs"])
def test_checkpoint_naming_code_is_refused_and_not_run(tmp_path, capsys, command):
    marker = tmp_path / "ran"
    evil = _code_naming_checkpoint(tmp_path, marker)
    main, argv = _commands_loading(evil, tmp_path)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "never names code" in err[0] and "--model subprocess:getoutput" in err[0], err
    assert not marker.exists()
    assert not any(p.suffix in (".h5", ".json") for p in tmp_path.iterdir())


def test_checkpoint_naming_code_loads_only_when_the_caller_names_it(tmp_path):
    (tmp_path / "my_nets.py").write_text(
        "import torch\n"
        "def net(num_classes=10):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, num_classes))\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        model = models.create_model("my_nets:net", num_classes=3)
        models.save_checkpoint(tmp_path / "own.pt", model)
        with pytest.raises(models.CheckpointError, match="model_name='my_nets:net'"):
            models.load_checkpoint(tmp_path / "own.pt")
        loaded = models.load_checkpoint(tmp_path / "own.pt", model_name="my_nets:net")
        assert loaded.model_kwargs == {"num_classes": 3}
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_nets", None)


def test_surface_config_naming_code_is_not_run(tmp_path, capsys, tiny_ckpt):
    """`hessian --surface` rebuilds model and data from a surface's config: a plugin dataset
    (or model) stored there is used only when the user names it again."""
    import json

    from landscape import hessian

    surface = tmp_path / "s.h5"
    argv = ["--ckpt", str(tiny_ckpt), "--dataset", "tinydata:tiny", "--samples", "8"]
    assert compute.main([*argv, "--x", "-1:1:3", "--out", str(surface), "--quiet"]) == 0
    marker = tmp_path / "imported"
    (tmp_path / "evil_data.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with h5py.File(surface, "r+") as f:
            cfg = json.loads(f.attrs["config"])
            cfg["dataset"], cfg["model"] = "evil_data:tiny", "evil_data:net"
            f.attrs["config"] = json.dumps(cfg)
        capsys.readouterr()
        assert hessian.main(["--surface", str(surface), "--iters", "2"]) == 2
        err = capsys.readouterr().err
        assert "never names code" in err and "--dataset evil_data:tiny" in err
        assert not marker.exists() and "evil_data" not in sys.modules
    finally:
        sys.path.remove(str(tmp_path))


# ------------------------------------------------- outputs never destroy (issue #23)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_no_command_overwrites_a_finished_surface_unasked(tmp_path, capsys, tiny_ckpt):
    from landscape import eigendirs, export, trajectory

    base = make_surface_file(tmp_path, "base.h5", shape=(5, 4))
    other = make_surface_file(tmp_path, "other.h5", shape=(5, 4))
    before = {p: _sha(p) for p in (base, other)}
    run = tmp_path / "run"
    for epoch in range(3):
        models.save_checkpoint(run / f"epoch_{epoch:03d}.pt", models.create_model("resnet20"))
    data_args = ["--dataset", "tinydata:tiny", "--samples", "8"]
    photo = tmp_path / "photo.png"  # a picture of the user's, not a landscape figure
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    before[photo] = _sha(photo)
    cases = [
        (export.main, [str(base), "--csv", "--out", str(base)], "also an input"),
        (export.main, [str(base), "--vtk", "--out", str(other)], "landscape-surface"),
        (trajectory.main, [str(run), "--out", str(other)], "landscape-surface"),
        (
            eigendirs.main,
            ["--ckpt", str(tiny_ckpt), *data_args, "--iters", "3", "--out", str(other)],
            "landscape-surface",
        ),
        (plot.main, [str(base), "--out", str(photo)], "did not write"),
    ]
    for main, argv, message in cases:
        assert main(argv) == 2, argv
        line = _one_line(capsys)
        assert message in line and ("--overwrite" in line or "also an input" in line), line
    assert {p: _sha(p) for p in before} == before
    # The same commands may redo their own output, and replace others' with --overwrite.
    csv = tmp_path / "base.csv"
    assert export.main([str(base), "--csv"]) == 0 and export.main([str(base), "--csv"]) == 0
    csv.write_text("a user's notes\n")
    assert export.main([str(base), "--csv"]) == 2
    assert "did not write" in _one_line(capsys)
    assert export.main([str(base), "--csv", "--overwrite"]) == 0
    assert csv.read_text().startswith("alpha,beta,")


def test_compute_never_replaces_its_own_input(tmp_path, capsys, tiny_ckpt):
    argv = ["--ckpt", str(tiny_ckpt), "--dataset", "tinydata:tiny", "--x", "-1:1:3", "--quiet"]
    before = _sha(tiny_ckpt)
    ckpt_h5 = tmp_path / "ckpt.h5"  # a checkpoint that happens to end in .h5
    ckpt_h5.write_bytes(tiny_ckpt.read_bytes())
    argv[1] = str(ckpt_h5)
    assert compute.main([*argv, "--out", str(ckpt_h5), "--overwrite"]) == 2
    assert "also an input" in _one_line(capsys)
    assert _sha(tiny_ckpt) == before == _sha(ckpt_h5)


def test_overwrite_is_refused_while_another_process_writes(tmp_path, tiny_ckpt):
    """`--overwrite` takes the writers' lock; a writer whose file was replaced stops."""
    from landscape.io.surface_file import SurfaceWriter, replacing

    path = make_surface_file(tmp_path, "s.h5", shape=(5, 4), partial=0.5)
    with SurfaceWriter(path):  # another process computing into it (flock is per open file)
        with pytest.raises(StoreError, match="being written by another process"):
            with replacing(path):
                pass
        argv = ["--ckpt", str(tiny_ckpt), "--dataset", "tinydata:tiny", "--x", "-1:1:3"]
        assert compute.main([*argv, "--out", str(path), "--overwrite", "--quiet"]) == 2
    # A writer whose file is replaced under it (by a tool that ignores the lock) stops.
    writer = SurfaceWriter(path)
    replacement = make_surface_file(tmp_path, "new.h5", shape=(5, 4))
    os.replace(replacement, path)
    with pytest.raises(StoreError, match="replaced or deleted by another process"):
        writer.write((np.array([0]), np.array([0])), {"train_loss": np.array([1.0])})
    writer.close()


def test_legacy_conversion_is_one_atomic_write(tmp_path, monkeypatch):
    """The converted file appears complete in one rename and is never written again, so
    a kill leaves no file or the whole one (never a valid file of NaN), and a rerun after
    a kill needs no --force."""
    from surfaces import make_legacy_file

    from landscape import convert
    from landscape.io import legacy

    old = make_legacy_file(tmp_path, "old.h5", shape=(6, 4), uncomputed=2)
    new = tmp_path / "new.h5"
    expected = legacy.read_legacy_surface(old).get("train", "loss")
    renamed, real_replace = [], os.replace

    def replace(src, dst):  # what is about to appear at `new`, just before it does
        if Path(dst) == new:
            renamed.append(read_surface(src).get("train", "loss"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    mtime = None
    assert convert.main([str(old), "--out", str(new)]) == 0
    mtime = new.stat().st_mtime_ns
    assert len(renamed) == 1
    np.testing.assert_array_equal(renamed[0], expected)
    np.testing.assert_array_equal(read_surface(new).get("train", "loss"), expected)
    assert new.stat().st_mtime_ns == mtime and not list(tmp_path.glob(".*.tmp"))


def test_resume_checks_the_samples_content(tmp_path, capsys, tiny_ckpt):
    """Same dataset name and settings, other images: the rerun refuses to fill the rest."""
    from PIL import Image

    root = tmp_path / "imgs"
    g = np.random.default_rng(0)

    def fill(seed_shift: int) -> None:
        for split in ("train", "test"):
            for c in range(2):
                folder = root / split / f"c{c}"
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(4):
                    pixels = (g.integers(0, 255, (8, 8, 3)) + seed_shift) % 256
                    Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")

    fill(0)
    out = tmp_path / "s.h5"
    argv = ["--ckpt", str(tiny_ckpt), "--dataset", f"imagefolder:{root}", "--x", "-1:1:5"]
    argv += ["--out", str(out), "--quiet"]
    assert compute.main(argv) == 0
    with h5py.File(out, "r+") as f:  # as if interrupted: two points missing
        loss = f["train_loss"][()]
        loss[:2] = np.nan
        f["train_loss"][...] = loss
    fill(7)  # the images replaced under the same names
    capsys.readouterr()
    assert compute.main(argv) == 2
    assert "samples' content differs" in _one_line(capsys)
    assert np.isnan(read_surface(out).values["train_loss"][:2]).all()
