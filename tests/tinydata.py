"""A user dataset plugin for the tests (``--dataset tinydata:tiny``): tiny, fixed, offline."""

from __future__ import annotations

import os

import torch

from landscape.data.datasets import DataError


def tiny(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """48 train / 32 test normalized 8x8 RGB images, 10 classes, fixed by a seed per split."""
    n = 48 if split == "train" else 32
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = torch.arange(n) % 10
    return x, y


def refused_on_rank_1(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`tiny`, except under torchrun's rank 1, which refuses it (bad input on one rank only)."""
    if os.environ.get("RANK") == "1":
        # A plugin reports bad input with landscape's InputError (DataError is one);
        # any other exception is a bug in the plugin and keeps its traceback.
        raise DataError("tinydata: rank 1 refuses this dataset; use tinydata:tiny")
    return tiny(split)
