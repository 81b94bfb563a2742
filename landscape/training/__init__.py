"""Training ResNets and plain networks with per-epoch checkpoints, resumable."""

from landscape.training import trainer
from landscape.training.trainer import *  # noqa: F403 - the package's API is its module's

__all__ = list(trainer.__all__)
