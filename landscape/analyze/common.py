"""What the analysis commands share: loading a model and data, provenance, atomic writes."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

import models

from ..data import DataTensors, check_model_fits, load_split, take_subset
from ..errors import InputError
from ..fileio import atomic_path, atomic_savefig, provenance, sha256
from ..pretrained import resolve_checkpoint

__all__ = [
    "FIGURE_FORMATS",
    "LanczosWarnings",
    "check_labels",
    "check_suffix",
    "json_safe",
    "load_data",
    "load_model",
    "parse_model_kwargs",
    "provenance",
    "save_figure",
    "set_default",
    "sha256",
    "weight_names",
    "write_json",
]

FIGURE_FORMATS = (".png", ".pdf", ".svg")


def set_default(parser: argparse.ArgumentParser, dest: str, value: Any, help: str) -> None:
    """Change the default and help text of an option added elsewhere (e.g. ``--samples``)."""
    for action in parser._actions:
        if action.dest == dest:
            action.default, action.help = value, help
            return
    raise AssertionError(f"no option {dest!r}")


def parse_model_kwargs(text: str) -> dict[str, Any]:
    """``--model-kwargs`` JSON as a dict; anything else is a one-line error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"--model-kwargs must be a JSON object; got {text!r}") from err
    if not isinstance(value, dict):
        raise InputError(f"--model-kwargs must be a JSON object; got {text!r}")
    return value


def load_model(
    spec: str,
    *,
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    device: torch.device,
) -> models.LoadedCheckpoint:
    """A checkpoint (path or ``pretrained:NAME``) rebuilt in eval mode on `device`."""
    loaded = models.load_checkpoint(
        resolve_checkpoint(spec), model_name=model, model_kwargs=dict(model_kwargs or {}) or None
    )
    loaded.model.to(device).eval()
    return loaded


def load_data(
    dataset: str,
    split: str,
    *,
    samples: int | None,
    default_samples: int,
    data_root: str | None = None,
    download: bool = False,
    subset: str = "first",
    seed: int = 0,
) -> DataTensors:
    """`load_split` with `samples` if given, else at most `default_samples` (all of a smaller set).

    An explicit ``--samples`` larger than the split is an error; the default never is.
    """
    data = load_split(dataset, split, data_root=data_root, download=download)  # read once
    if samples is None:
        samples = default_samples if len(data) > default_samples else None
    return take_subset(data, samples=samples, subset=subset, seed=seed)


def weight_names(model: nn.Module, wrt: str) -> list[str]:
    """Parameters the Hessian is taken over: ``weights`` (dim > 1, as ignore=biasbn) | ``all``."""
    named = list(model.named_parameters())
    if wrt == "all":
        return [n for n, _ in named]
    return [n for n, p in named if p.dim() > 1]


def check_labels(model: nn.Module, x: Tensor, y: Tensor) -> None:
    """Refuse inputs the model rejects and labels it has no output for (see
    `landscape.data.check_model_fits`), before any long computation."""
    check_model_fits(model, x, y, what="the data")


def json_safe(value: Any) -> Any:
    """NaN and infinities as None, numpy scalars and arrays as Python values (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, doc: Mapping[str, Any]) -> None:
    """Write `doc` as strict JSON (NaN as null), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(json_safe(doc), f, indent=1, allow_nan=False)


def check_suffix(path: str | os.PathLike, suffixes: tuple[str, ...], flag: str) -> Path:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{flag} must end in {' or '.join(suffixes)}; got {str(path)!r}")
    return path


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> None:
    atomic_savefig(fig, path, dpi=dpi)


class LanczosWarnings(logging.Filter):
    """Counts (and silences) the library's per-run "did not converge" warnings.

    A command reports them once, in its own words, instead of one line per run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._logger = logging.getLogger("landscape.hessian")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Lanczos did not converge"):
            self.count += 1
            return False
        return True

    def __enter__(self) -> LanczosWarnings:
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self)
