"""The checkpoints shipped in the package (`pretrained:NAME`, docs/results.md)."""

from __future__ import annotations

import pytest
import torch

from landscape.core.checkpoints import list_pretrained, resolve_checkpoint
from landscape.data.datasets import load_split
from landscape.models import load_checkpoint, read_checkpoint

SHIPPED = ["plain20", "plain20_seed1", "plain56", "resnet20", "resnet20_seed1", "resnet56"]


def test_the_networks_of_the_results_are_shipped():
    assert list_pretrained() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_is_small_complete_and_as_accurate_as_it_says(name):
    path = resolve_checkpoint(f"pretrained:{name}")
    assert path.stat().st_size < 4_000_000
    raw = read_checkpoint(path)
    # pretrained:NAME_seed1: the same network trained again with seed 1 (mode connectivity)
    assert raw["format"] == "landscape-checkpoint" and raw["model"] == name.split("_seed")[0]
    assert not {"optimizer", "scheduler", "rng"} & set(raw)  # weights, not a resumable run
    history = raw["metrics"]["history"]
    assert [row["epoch"] for row in history] == list(range(raw["epoch"] + 1))
    stated = 1.0 - raw["metrics"]["test_error"]
    assert stated > 0.7  # plain56: 72%, the degradation problem

    # Independent check: the weights classify CIFAR-10 test images as well as stated
    # (the embedded 1,000 are a sample of the 10,000 it was measured on).
    model = load_checkpoint(path).model.eval()
    test = load_split("embedded", "test")
    with torch.no_grad():
        accuracy = (model(test.normalized()).argmax(1) == test.y).float().mean().item()
    assert abs(accuracy - stated) < 0.04, (accuracy, stated)
