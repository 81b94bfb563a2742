"""Model statistics: parameters, multiply-accumulates, depth, skips."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .registry import create_model, list_models
from .resnet import BasicBlock, Bottleneck, CifarResNet, has_skip_connections

__all__ = ["ModelStats", "model_stats", "count_parameters", "count_macs", "models_table"]


@dataclass(frozen=True)
class ModelStats:
    name: str
    params: int
    macs: int
    input_size: int
    depth: int
    skips: bool


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of conv and linear layers for one input of `input_shape`.

    Runs on the meta device, so even resnet152 at 224x224 costs no real compute.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        meta_model = model.to("meta") if next(model.parameters()).device.type == "meta" else model
        device = next(meta_model.parameters()).device
        with torch.no_grad():
            meta_model.eval()(torch.empty((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
    return total


def network_depth(model: nn.Module) -> int:
    """Weighted layers on the main path (convs in stem and blocks, plus the classifier)."""
    depth = 0
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and ".downsample" not in name:
            depth += 1
        elif isinstance(m, nn.Linear):
            depth += 1
    return depth


def model_stats(name: str, **kwargs) -> ModelStats:
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    size = 32 if isinstance(model, CifarResNet) or kwargs.get("small_input") else 224
    in_channels = kwargs.get("in_channels", 3)
    return ModelStats(
        name=name,
        params=count_parameters(model),
        macs=count_macs(model, (in_channels, size, size)),
        input_size=size,
        depth=network_depth(model),
        skips=has_skip_connections(model),
    )


def _block_kind(name: str) -> str:
    with torch.device("meta"):
        model = create_model(name)
    return (
        "Bottleneck"
        if any(isinstance(m, Bottleneck) for m in model.modules())
        else ("BasicBlock" if any(isinstance(m, BasicBlock) for m in model.modules()) else "-")
    )


def models_table(pattern: str = "*") -> str:
    """A text table of every registered model matching `pattern`."""
    header = (
        f"{'model':<11} {'block':<11} {'depth':>5} {'skips':>5} {'params':>12} {'MACs':>10}  input"
    )
    rows = [header, "-" * len(header)]
    for name in list_models(pattern):
        s = model_stats(name)
        rows.append(
            f"{s.name:<11} {_block_kind(name):<11} {s.depth:>5} {'yes' if s.skips else 'no':>5} "
            f"{s.params:>12,} {s.macs / 1e6:>9.1f}M  {s.input_size}x{s.input_size}"
        )
    return "\n".join(rows)
