"""Where tensors go: the one device resolver of the project (commands, engine, ranks)."""

from __future__ import annotations

import torch

from landscape.core.errors import InputError

__all__ = ["resolve_device"]


def resolve_device(
    name: str | torch.device | None = "auto",
    *,
    local_rank: int | None = None,
    local_world_size: int = 1,
) -> torch.device:
    """``auto`` (CUDA when present) | ``cpu`` | ``cuda`` | ``cuda:N``, checked to exist.

    For one rank of a ``torchrun`` job, pass its `local_rank` and `local_world_size`:
    ``auto`` and ``cuda`` then mean ``cuda:LOCAL_RANK``, and one GPU named for every
    rank of a node is refused.

    Args:
        name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a `torch.device` (None: auto).
        local_rank: this process's rank on its node, under ``torchrun``.
        local_world_size: the processes on this node.

    Returns:
        The `torch.device`.
    """
    name = "auto" if name is None else str(name)
    if local_rank is not None and (
        name == "cuda" or (name == "auto" and torch.cuda.is_available())
    ):
        if not torch.cuda.is_available():
            raise InputError(f"device={name!r}: no CUDA GPU here; use device='cpu'", arg="device")
        n = torch.cuda.device_count()
        if local_rank >= n:
            raise InputError(
                f"device={name!r}: local rank {local_rank} needs cuda:{local_rank} but this "
                f"node has {n} GPU(s); start at most {n} processes per node (--nproc_per_node)",
                arg="device",
            )
        return torch.device("cuda", local_rank)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise InputError(
            f"device must be auto, cpu, cuda or cuda:N; got {name!r}", arg="device"
        ) from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device={name!r}: no CUDA GPU here; use device='cpu'", arg="device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"device={name!r}: only {torch.cuda.device_count()} CUDA GPU(s); use cuda:0..",
                arg="device",
            )
        if local_rank is not None and local_world_size > 1:
            raise InputError(
                f"device={name!r} puts all {local_world_size} ranks of this node on one GPU; "
                "use device='cuda' (each rank takes cuda:LOCAL_RANK)",
                arg="device",
            )
    elif device.type != "cpu":
        raise InputError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}", arg="device")
    return device
