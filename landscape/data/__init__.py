"""Datasets: the embedded CIFAR-10 sample, CIFAR-10/100, image folders, your own function.

Everything is loaded into memory as tensors (`DataTensors`); see `datasets`.
"""

from landscape.data import datasets
from landscape.data.datasets import *  # noqa: F403 - the package's API is its module's

__all__ = list(datasets.__all__)
