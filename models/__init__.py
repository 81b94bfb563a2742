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
from .registry import (
    ModelError,
    create_model,
    import_function,
    is_model,
    list_models,
    register_model,
)
from .resnet import BasicBlock, Bottleneck, CifarResNet, ResNet, has_skip_connections
from .summary import count_macs, count_parameters, model_stats, models_table

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
    "has_skip_connections",
    "import_function",
    "is_model",
    "list_models",
    "load_checkpoint",
    "load_state_dict_strict",
    "model_stats",
    "models_table",
    "read_checkpoint",
    "register_model",
    "save_checkpoint",
]
