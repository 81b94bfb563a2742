"""Shared fixtures: a tiny trained-looking network and a tiny dataset, CPU only, seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from landscape import models

TESTS = Path(__file__).parent
REPO = TESTS.parent

# Deterministic, and fair to a 2-core machine shared with other work.
torch.set_num_threads(1)


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, like a trained net."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def make_checkpoint(path: Path, name: str = "resnet20", seed: int = 0, **kwargs) -> Path:
    torch.manual_seed(seed)
    model = randomize_bn(models.create_model(name, **kwargs), seed)
    models.save_checkpoint(path, model, epoch=1)
    return path


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    """A resnet20 checkpoint with non-trivial BatchNorm statistics."""
    return make_checkpoint(tmp_path / "tiny.pt")


@pytest.fixture
def tiny_dataset() -> str:
    """``--dataset`` spec of `tests/tinydata.py`: 48 train / 32 test images of 8x8."""
    return "tinydata:tiny"


def subprocess_env() -> dict[str, str]:
    """Environment for running the CLI in a child process that imports tests/tinydata.py."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(autouse=True)
def _tests_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


PYTHON = sys.executable
