"""Training: the loop lowers the loss, checkpoints, bit-identical resume, the CLI."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from landscape.data.datasets import load_split
from landscape.models import load_checkpoint, read_checkpoint
from landscape.train import main
from landscape.training import trainer as training
from landscape.training.trainer import (
    TrainConfig,
    TrainConfigError,
    augment_batch,
    lr_factor,
    run_training,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A learnable ImageFolder of 8x8 images: dark class 'dark', bright class 'light'.

    test/ holds the same images as train/, so test loss measures the fit.
    """
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        rng = np.random.default_rng(0)
        for cls, (lo, hi) in (("dark", (0, 110)), ("light", (145, 256))):
            (root / split / cls).mkdir(parents=True)
            for j in range(16):
                arr = rng.integers(lo, hi, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / cls / f"{j:02d}.png")
    return root


def tiny(folder, out, **kw) -> TrainConfig:
    settings = dict(
        model="resnet20",
        out=str(out),
        dataset=f"imagefolder:{folder}",
        epochs=2,
        batch_size=8,
        lr=0.05,
        crop_padding=1,
        eval_batch_size=32,
    )
    return TrainConfig(**{**settings, **kw})


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@torch.no_grad()
def _batch_stat_loss(path, data) -> float:
    model = load_checkpoint(path).model.train()
    return float(F.cross_entropy(model(data.normalized()), data.y))


def test_two_epochs_lower_the_loss_and_write_the_path(folder, tmp_path):
    final = run_training(tiny(folder, tmp_path / "run"), device="cpu", progress=False)
    out = tmp_path / "run"
    assert final == out / "final.pt"
    names = sorted(p.name for p in out.iterdir() if p.name != ".lock")
    assert names == [
        "config.json",
        "epoch_000.pt",
        "epoch_001.pt",
        "epoch_002.pt",
        "final.pt",
        "metrics.csv",
    ]
    rows = read_rows(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["train_loss"] == ""  # the initialization was not trained on
    assert float(rows[2]["train_loss"]) < float(rows[1]["train_loss"])
    # The fit of the weights themselves: loss on the training images with batch
    # statistics (eval-mode running statistics are not settled after 8 steps).
    data = load_split(f"imagefolder:{folder}", "train")
    assert _batch_stat_loss(out / "final.pt", data) < 0.5 * _batch_stat_loss(
        out / "epoch_000.pt", data
    )
    assert all(0 <= float(r["test_error"]) <= 1 for r in rows)

    # The checkpoint format: plain weights_only dicts that rebuild the model.
    ckpt = read_checkpoint(final)
    assert ckpt["format"] == "landscape-checkpoint" and ckpt["epoch"] == 2
    assert ckpt["model_kwargs"] == {"num_classes": 2}
    assert ckpt["metrics"]["test_loss"] == pytest.approx(float(rows[2]["test_loss"]))
    assert ckpt["dataset"]["dataset"] == f"imagefolder:{folder}"
    assert ckpt["dataset"]["split"] == "train" and ckpt["dataset"]["n"] == 32
    assert {"optimizer", "scheduler", "rng", "train_config"} <= set(ckpt)
    loaded = load_checkpoint(out / "epoch_000.pt")
    assert loaded.epoch == 0 and loaded.model_name == "resnet20"
    assert json.loads((out / "config.json").read_text())["lr"] == 0.05


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_interrupted_run_resumes_to_identical_weights(folder, tmp_path, monkeypatch, precision):
    config = tiny(folder, tmp_path / "straight", precision=precision)
    run_training(config, device="cpu", progress=False)

    resumed = tiny(folder, tmp_path / "resumed", precision=precision)
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # the second batch of epoch 2 (4 batches per epoch)
            raise KeyboardInterrupt
        return augment_batch(*args, **kwargs)

    monkeypatch.setattr(training, "augment_batch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_training(resumed, device="cpu", progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "resumed" / "final.pt").exists()
    assert (tmp_path / "resumed" / "epoch_001.pt").exists()
    run_training(resumed, device="cpu", progress=False)

    a = read_checkpoint(tmp_path / "straight" / "final.pt")
    b = read_checkpoint(tmp_path / "resumed" / "final.pt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for state_a, state_b in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(state_a["momentum_buffer"], state_b["momentum_buffer"])
    fields = ("train_loss", "train_error", "test_loss", "test_error", "lr")
    rows_a = read_rows(tmp_path / "straight" / "metrics.csv")
    rows_b = read_rows(tmp_path / "resumed" / "metrics.csv")
    assert [[r[f] for f in fields] for r in rows_a] == [[r[f] for f in fields] for r in rows_b]


def test_cli_trains_thins_checkpoints_and_refuses_other_settings(folder, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = [
        "--model",
        "plain20",
        "--dataset",
        f"imagefolder:{folder}",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--crop-padding",
        "1",
        "--schedule",
        "onecycle",
        "--save-every",
        "2",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "epoch 3/3" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.pt")) == [
        "epoch_000.pt",
        "epoch_002.pt",
        "epoch_003.pt",
        "final.pt",
    ]
    assert main(argv) == 0  # finished: nothing to do
    assert "complete" in capsys.readouterr().out

    assert main([*argv, "--lr", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "lr: 0.1 -> 0.2" in err and err.count("\n") == 1
    assert main([*argv, "--save-every", "1"]) == 0  # a runtime setting may change


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["--dataset", "nonsense", "--out", str(tmp_path / "x"), "--epochs", "1"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["--model", "resnet21", "--out", str(tmp_path / "y"), "--samples", "4"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["--epochs", "0", "--out", str(tmp_path / "z")]) == 2
    assert "--epochs: must be between 1" in capsys.readouterr().err


def test_augment_batch_matches_per_image_crop_and_flip():
    x = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    g = torch.Generator().manual_seed(3)
    out = augment_batch(x, padding=2, flip=True, generator=g)
    g = torch.Generator().manual_seed(3)
    offsets = torch.randint(0, 5, (2, 6), generator=g)
    flips = torch.rand(6, generator=g) < 0.5
    for i in range(6):
        padded = F.pad(x[i], (2, 2, 2, 2))
        oy, ox = offsets[:, i].tolist()
        crop = padded[:, oy : oy + 5, ox : ox + 7]
        expected = crop.flip(-1) if flips[i] else crop
        assert torch.equal(out[i], expected)
    assert flips.any() and not flips.all()
    same = augment_batch(x, padding=0, flip=False, generator=g)
    assert torch.equal(same, x)


def test_lr_schedules():
    step = TrainConfig(epochs=10)
    assert [lr_factor(step, e * 4, 4) for e in (0, 4, 5, 7, 8, 9)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    cosine = TrainConfig(epochs=10, schedule="cosine")
    assert lr_factor(cosine, 0, 4) == 1 and lr_factor(cosine, 20, 4) == pytest.approx(0.5)
    assert lr_factor(cosine, 40, 4) == pytest.approx(0)
    cycle = TrainConfig(epochs=10, schedule="onecycle")
    assert lr_factor(cycle, 0, 10) == pytest.approx(1 / 25)
    assert lr_factor(cycle, 30, 10) == pytest.approx(1)
    assert lr_factor(cycle, 100, 10) == pytest.approx(1 / 25e4)
    warm = TrainConfig(epochs=10, warmup_epochs=1)
    assert lr_factor(warm, 0, 4) == 0.25 and lr_factor(warm, 3, 4) == 1
    assert math.isclose(lr_factor(TrainConfig(schedule="constant"), 99, 4), 1)


def test_config_validation_and_round_trip():
    with pytest.raises(TrainConfigError, match="schedule must be one of"):
        TrainConfig(schedule="linear")
    config = TrainConfig(milestones=[0.3, 0.6], model_kwargs={"width": 2})
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.milestones == (0.3, 0.6)
    assert again.differences(TrainConfig(lr=0.2, save_every=5)) == [
        "model_kwargs: {} -> {'width': 2}",
        "lr: 0.2 -> 0.1",
        "milestones: [0.5, 0.75] -> [0.3, 0.6]",
    ]


def test_user_dataset_is_trained_on_as_given(tmp_path, monkeypatch):
    (tmp_path / "train_data_mod.py").write_text(
        "import torch\n"
        "def blobs(split):\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    y = torch.arange(24) % 3\n"
        "    return torch.randn(24, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1), y\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def no_augmentation(*args, **kwargs):
        raise AssertionError("a user's dataset must not be augmented")

    monkeypatch.setattr(training, "augment_batch", no_augmentation)
    config = TrainConfig(
        model="resnet20",
        dataset="train_data_mod:blobs",
        out=str(tmp_path / "run"),
        epochs=1,
        batch_size=8,
    )
    try:
        run_training(config, device="cpu", progress=False)
    finally:
        sys.modules.pop("train_data_mod", None)
    ckpt = read_checkpoint(tmp_path / "run" / "final.pt")
    assert ckpt["model_kwargs"] == {"num_classes": 3, "in_channels": 1}
    assert ckpt["dataset"]["dataset"] == "train_data_mod:blobs"


def test_a_run_that_diverges_stops_in_one_line_and_keeps_the_epochs_before(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--dataset", "tinydata:tiny", "--epochs", "3", "--batch-size", "16", "--lr", "1e30",
            "--out", str(out), "--quiet", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the run diverged" in err and "--lr" in err
    assert (out / "epoch_000.pt").is_file()
    assert not (out / "epoch_001.pt").exists() and not (out / "final.pt").exists()
