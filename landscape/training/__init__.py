"""Training networks with per-epoch checkpoints, and curves between two minima; resumable."""

from landscape.training import curve, trainer
from landscape.training.curve import *  # noqa: F403 - the package's API is its modules'
from landscape.training.trainer import *  # noqa: F403

__all__ = list(trainer.__all__) + [n for n in curve.__all__ if n not in trainer.__all__]
