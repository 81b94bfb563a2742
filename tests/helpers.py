"""Shared helpers of the tests: paths, a trained-looking checkpoint, a child's environment.

Import them from here (pytest puts ``tests/`` on ``sys.path``)::

    from helpers import PYTHON, REPO, make_checkpoint, subprocess_env

`conftest.py` holds only fixtures and hooks; child processes are `procs.py`'s, analytic
surface files `surfaces.py`'s, the browser `browser.py`'s, the dataset plugin `tinydata.py`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from landscape import models

__all__ = ["PYTHON", "REPO", "TESTS", "make_checkpoint", "randomize_bn", "subprocess_env"]

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
PYTHON = sys.executable


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
    """A checkpoint of network `name` (seeded weights, `randomize_bn` statistics) at `path`."""
    torch.manual_seed(seed)
    model = randomize_bn(models.create_model(name, **kwargs), seed)
    models.save_checkpoint(path, model, epoch=1)
    return path


def subprocess_env() -> dict[str, str]:
    """Environment for running the CLI in a child process that imports tests/tinydata.py."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env
