"""Datasets: the embedded CIFAR-10 sample, CIFAR-10/100, image folders, your own function.

Everything is loaded into memory as tensors (`DataTensors`); see `datasets`.
"""

from landscape.data.datasets import (
    DEFAULT_DATA_ROOT,
    DEFAULT_DATASET,
    SPLITS,
    SUBSETS,
    DataError,
    DataTensors,
    as_tensors,
    check_model_fits,
    in_channels,
    is_plugin,
    load_split,
    load_split_capped,
    normalize,
    num_classes,
    subset_indices,
    take_subset,
)

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_DATA_ROOT",
    "DataError",
    "DataTensors",
    "SPLITS",
    "SUBSETS",
    "as_tensors",
    "check_model_fits",
    "in_channels",
    "is_plugin",
    "load_split",
    "load_split_capped",
    "normalize",
    "num_classes",
    "subset_indices",
    "take_subset",
]
