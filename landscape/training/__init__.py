"""Training ResNets and plain networks with per-epoch checkpoints, resumable."""

from landscape.training.trainer import (
    CHANNELS_LAST,
    METRIC_FIELDS,
    SCHEDULES,
    TRAIN_PRECISIONS,
    TrainConfig,
    TrainConfigError,
    augment_batch,
    evaluate,
    lr_factor,
    train,
)

__all__ = [
    "CHANNELS_LAST",
    "METRIC_FIELDS",
    "SCHEDULES",
    "TRAIN_PRECISIONS",
    "TrainConfig",
    "TrainConfigError",
    "augment_batch",
    "evaluate",
    "lr_factor",
    "train",
]
