"""Datasets: the embedded CIFAR-10 sample, CIFAR-10/100, image folders, your own function.

Everything is loaded into memory as tensors (`DataTensors`); see `datasets`.
"""

from landscape.data import datasets, spec
from landscape.data.datasets import *  # noqa: F403 - the package's API is its modules'
from landscape.data.spec import *  # noqa: F403

__all__ = [*datasets.__all__, *spec.__all__]
