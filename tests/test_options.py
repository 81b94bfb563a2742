"""Flags come from the settings records: every flag is a field (or declared command-only),
every field has its flag, and a value given on the command line reaches the record."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torchvision

from landscape import compute, connect, train
from landscape.data import DataSpec
from landscape.surface.config import SurfaceConfig
from landscape.training import CurveConfig, TrainConfig

DATA = {f.name for f in dataclasses.fields(DataSpec)}


def dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions}


def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - {"data"}


@pytest.mark.parametrize(
    ("module", "record"),
    [(compute, SurfaceConfig), (train, TrainConfig), (connect, CurveConfig)],
    ids=["compute", "train", "connect"],
)
def test_every_flag_is_a_field_or_declared_command_only(module, record):
    flags = dests(module.build_parser())
    command_only = set(module.COMMAND_ONLY)
    assert flags - fields(record) - DATA - command_only == set(), "flags of no field"
    assert fields(record) | DATA <= flags, "fields without a flag"
    assert not command_only & (fields(record) | DATA), "a field declared command-only"


@pytest.mark.parametrize(
    "command", ["hessian", "eigendirs", "responses", "compute", "train", "connect"]
)
def test_every_command_that_loads_data_offers_every_data_option(command):
    module = importlib.import_module(f"landscape.{command}")
    assert DATA <= dests(module.build_parser())


def _non_default(action: argparse.Action) -> tuple[list[str], object]:
    """Arguments that set `action` to a value other than its default, and that value."""
    flag = action.option_strings[0]
    if action.nargs == 0:  # store_true / store_false
        return [flag], not action.default
    if action.choices:
        value = next(c for c in action.choices if c != action.default)
        return [flag, value], value
    examples = {
        "x": "-2:2:5",
        "y": "-3:3:7",
        "model_kwargs": '{"num_classes": 3}',
        "split": "train,test",
        "params": "blocks.*.attn.*,head.*",
        "exclude": "*.bias",
    }
    if action.dest in examples:
        return [flag, examples[action.dest]], None
    if action.type is float:
        return [flag, "0.25"], 0.25
    if action.type is not None and action.type is not str:
        return [flag, "7"], 7
    return [flag, f"value-of-{action.dest}"], f"value-of-{action.dest}"


def test_no_compute_flag_is_dropped_on_the_way_to_the_config():
    parser = compute.build_parser()
    base = ["--ckpt", "a.pt", "--out", "s.h5"]
    companions = {"ckpt3": ["--ckpt2", "b.pt", "--y", "-1:1:3"]}
    for action in parser._actions:
        if action.dest in (*compute.COMMAND_ONLY, "ckpt", "out"):
            continue
        argv, value = _non_default(action)
        args = parser.parse_args([*base, *companions.get(action.dest, []), *argv])
        config = compute.config_from_args(args)
        holder = config.data if action.dest in DATA else config
        got = getattr(holder, action.dest)
        default = getattr(
            SurfaceConfig().data if action.dest in DATA else SurfaceConfig(), action.dest
        )
        assert got != default, f"--{action.dest} was dropped"
        if value is not None:
            assert got == value, action.dest


def test_no_train_flag_is_dropped_on_the_way_to_the_config():
    parser = train.build_parser()
    for action in parser._actions:
        if action.dest in train.COMMAND_ONLY:
            continue
        argv, value = _non_default(action)
        if action.dest in ("milestones", "onecycle_div"):
            argv = [argv[0], {"milestones": "0.25,0.5", "onecycle_div": "7"}[action.dest]]
        config = train.config_from_args(parser.parse_args(argv))
        holder = config.data if action.dest in DATA else config
        default = getattr(TrainConfig().data if action.dest in DATA else TrainConfig(), action.dest)
        assert getattr(holder, action.dest) != default, f"--{action.dest} was dropped"


class FakeCIFAR10:
    """torchvision's CIFAR10 with download=True, offline: writes the python-format files
    (5 train batches of 4 images, a test batch of 6) where the real one would."""

    calls: list[tuple[str, bool]] = []

    def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
        type(self).calls.append((root, download))
        folder = Path(root) / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
            n = 6 if name == "test_batch" else 4
            batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     "labels": [int(v) for v in rng.integers(0, 10, n)]}  # fmt: skip
            (folder / name).write_bytes(pickle.dumps(batch))
        names = [f"class{i}" for i in range(10)]
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))


def test_compute_download_fetches_the_missing_cifar_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    FakeCIFAR10.calls = []
    root, out = tmp_path / "data", tmp_path / "s.h5"
    argv = ["--ckpt", "pretrained:resnet20", "--dataset", "cifar10", "--data-root", str(root),
            "--samples", "8", "--x=-1:1:3", "--out", str(out), "--quiet"]  # fmt: skip
    assert compute.main(argv) == 2  # without --download: one line that asks for it
    assert "set download" in capsys.readouterr().err.replace("--download", "set download")
    assert FakeCIFAR10.calls == [] and not out.exists()
    assert compute.main([*argv, "--download"]) == 0
    assert FakeCIFAR10.calls == [(str(root), True)]
    with h5py.File(out, "r") as f:
        assert np.isfinite(f["train_loss"][:]).all()
    # --download is how, not what: a resume without it keeps the file.
    assert compute.main(argv) == 0


def test_data_spec_reads_back_from_a_surface_config_and_refuses_unasked_code():
    stored = SurfaceConfig(dataset="cifar10", samples=300, subset="stratified", data_seed=4)
    spec = DataSpec.from_config(stored.to_json())
    assert spec == DataSpec(dataset="cifar10", samples=300, subset="stratified", data_seed=4)
    assert DataSpec.from_config(stored.to_json(), samples=20).samples == 20
    with pytest.raises(Exception, match="never names code to run"):
        DataSpec.from_config({"dataset": "mymod:data"})
    assert SurfaceConfig.from_json(stored.to_json()) == stored
