"""Checkpoints of the original loss-landscape code (Li et al. 2018's ``cifar10/models``).

Its CIFAR ResNets (``ResNet20`` ... ``ResNet110``, their ``_noshort`` twins and the wide
``WRN56_k``) are our ``resnetN`` / ``plainN`` (``width=k``) module for module: 3x3 convs,
BN, projection shortcuts (a 1x1 conv and BN) where the shape changes, average pooling of
the 8x8 map, one linear layer. Only two names differ: its ``linear`` is our ``fc`` and its
``shortcut`` our ``downsample``. Its training script saves
``{"acc": ..., "epoch": ..., "state_dict": net.state_dict()}``.
"""

from __future__ import annotations

import re
from typing import Any

import torch

__all__ = ["from_original_code", "is_original_code", "original_model"]

_BLOCK = re.compile(r"^layer1\.(\d+)\.")


def is_original_code(state_dict: dict[str, Any]) -> bool:
    """Whether `state_dict` uses the original code's CIFAR ResNet names."""
    return "linear.weight" in state_dict and "conv1.weight" in state_dict


def from_original_code(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors under our names (``linear`` -> ``fc``, ``shortcut`` -> ``downsample``)."""
    out = {}
    for key, value in state_dict.items():
        key = re.sub(r"^linear\.", "fc.", key)
        key = key.replace(".shortcut.", ".downsample.")
        out[key] = value
    return out


def original_model(state_dict: dict[str, torch.Tensor]) -> tuple[str, dict[str, Any]] | None:
    """Our network for an original-code state dict, ``(name, kwargs)``, or None when it is
    not one of its 3-stage CIFAR ResNets (depth 6n+2, 16k/32k/64k channels)."""
    blocks = {int(m.group(1)) for k in state_dict if (m := _BLOCK.match(k))}
    conv1 = state_dict.get("conv1.weight")
    if not blocks or conv1 is None or conv1.dim() != 4 or "layer4.0.conv1.weight" in state_dict:
        return None
    width, rest = divmod(int(conv1.shape[0]), 16)
    if rest or width < 1:
        return None
    depth = 6 * (max(blocks) + 1) + 2
    family = "resnet" if any(".shortcut." in k for k in state_dict) else "plain"
    kwargs: dict[str, Any] = {"width": width} if width > 1 else {}
    fc = state_dict.get("linear.weight")
    if fc is not None and fc.dim() == 2 and fc.shape[0] != 10:
        kwargs["num_classes"] = int(fc.shape[0])
    return f"{family}{depth}", kwargs
