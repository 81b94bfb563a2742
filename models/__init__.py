"""Networks only: CIFAR / ImageNet ResNets and their plain twins, a registry, checkpoints.

This package imports nothing from `landscape`.
"""

from .checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    clean_state_dict,
    load_checkpoint,
    load_state_dict_strict,
    read_checkpoint,
    save_checkpoint,
)
from .registry import ModelError, create_model, is_model, list_models, register_model
from .resnet import BasicBlock, Bottleneck, CifarResNet, ResNet, has_skip_connections
from .summary import count_macs, count_parameters, format_table, model_stats

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CheckpointError",
    "CifarResNet",
    "LoadedCheckpoint",
    "ModelError",
    "ResNet",
    "clean_state_dict",
    "count_macs",
    "count_parameters",
    "create_model",
    "format_table",
    "has_skip_connections",
    "is_model",
    "list_models",
    "load_checkpoint",
    "load_state_dict_strict",
    "model_stats",
    "read_checkpoint",
    "register_model",
    "save_checkpoint",
]
