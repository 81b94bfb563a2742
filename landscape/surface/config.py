"""The settings of a surface job: one record, filled by the command line or by a caller.

`SurfaceConfig` is stored as JSON in every surface file; a resumed run must match it
(`SurfaceConfig.differences`), runtime-only settings excepted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from landscape.core.errors import InputError
from landscape.data import DEFAULT_DATASET
from landscape.surface.directions import IGNORES, NORMS
from landscape.surface.evaluate import BN_MODES, EVAL_PRECISIONS, LOSSES, STRATEGIES
from landscape.surface.grid import axis_text, parse_axis

__all__ = [
    "MAX_POINTS",
    "PER_SAMPLE_AUTO_BYTES",
    "PER_SAMPLE_MODES",
    "RUNTIME_FIELDS",
    "SurfaceConfig",
]

# Each value array of a surface file is then at most 80 MB; a 51x51 grid is 2,601 points.
MAX_POINTS = 10_000_000

# Settings that change how fast a surface is computed, not its values: a resumed
# run may use others (e.g. start on a laptop, finish on a GPU).
# per_sample too: an existing file's layout decides whether per-sample losses are kept.
RUNTIME_FIELDS = (
    "device", "batch_size", "chunk_size", "strategy", "label", "progress", "per_sample",
)  # fmt: skip
PER_SAMPLE_MODES = ("auto", "on", "off")
# per_sample="auto" keeps every sample's loss when they take at most this much (float32).
PER_SAMPLE_AUTO_BYTES = 64 * 2**20


@dataclass(frozen=True)
class SurfaceConfig:
    """Every setting of a surface job; ``landscape compute`` has one flag per field.

    Args:
        ckpt: the trained weights: a checkpoint file or ``pretrained:NAME``.
        model: the network (a name of ``landscape models`` or ``module:function``);
            needed for a bare state_dict or a checkpoint naming your own builder.
        model_kwargs: builder arguments (default: the checkpoint's).
        ckpt2, ckpt3: a plane through two or three models instead of random directions.
        directions: a directions file (``landscape eigendirs``, ``trajectory``, or the
            original code's) instead of random directions.
        dataset: ``embedded`` | ``cifar10`` | ``cifar100`` | ``imagefolder:DIR`` |
            ``module:function``; `data_root` is where CIFAR files are.
        split: ``"train"``, ``"test"`` or ``"train,test"`` (or a tuple of them).
        samples, subset, data_seed: evaluate on `samples` samples (default all): the
            first ones, or a class-stratified random subset drawn with `data_seed`.
        x, y: the alpha and beta grids: ``"-1:1:51"``, ``(-1, 1, 51)`` or the evenly
            spaced values as a list or array; no `y` gives a 1-D surface.
        norm: direction normalization, ``filter`` (Li et al.) | layer | weight | none.
        ignore: ``biasbn``: 1-D parameters (biases, BatchNorm) get a zero direction.
        seed: the direction seed; the same seed gives the same directions everywhere.
        orthogonalize: make the y direction orthogonal to x.
        bn: ``eval`` (theta*'s BatchNorm statistics) or ``recompute`` them at every
            point from `bn_samples` training samples.
        loss: ``ce`` (cross-entropy) or ``mse`` (of the logits against one-hot labels).
        precision: fp32 | tf32 | bf16 (GPU).
        batch_size, chunk_size, strategy, device: how fast, not what: may change on resume.
        label: the surface's name in figures (default: the model's).
        per_sample: keep every sample's loss at every point (``/per_sample/...``), so any
            statistic can be recomputed later (bootstrap intervals in `surface_metrics`):
            ``auto`` when they take at most 64 MB, ``on``, ``off``. A resumed file keeps its
            own choice.
    """

    ckpt: str | None = None
    model: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ckpt2: str | None = None
    ckpt3: str | None = None
    directions: str | None = None
    dataset: str = DEFAULT_DATASET
    data_root: str | None = None
    split: tuple[str, ...] = ("train",)
    samples: int | None = None
    subset: str = "first"
    data_seed: int = 0
    x: str = "-1:1:51"
    y: str | None = None
    norm: str = "filter"
    ignore: str = "biasbn"
    seed: int = 0
    orthogonalize: bool = False
    bn: str = "eval"
    bn_samples: int = 2048
    loss: str = "ce"
    precision: str = "fp32"
    batch_size: int | None = None
    chunk_size: int | None = None
    strategy: str = "auto"
    device: str = "auto"
    label: str | None = None
    per_sample: str = "auto"

    def __post_init__(self) -> None:
        self._check_types()
        # Plain Python values are welcome: split="train,test", x=(-1, 1, 51) or an array.
        split = self.split.split(",") if isinstance(self.split, str) else self.split
        object.__setattr__(self, "split", tuple(s.strip() for s in split))
        object.__setattr__(self, "x", axis_text(self.x, name="x"))
        if self.y is not None:
            object.__setattr__(self, "y", axis_text(self.y, name="y"))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        for name, value, allowed in (
            ("norm", self.norm, NORMS),
            ("ignore", self.ignore, IGNORES),
            ("bn", self.bn, BN_MODES),
            ("loss", self.loss, LOSSES),
            ("precision", self.precision, EVAL_PRECISIONS),
            ("strategy", self.strategy, STRATEGIES),
            ("per_sample", self.per_sample, PER_SAMPLE_MODES),
        ):
            if value not in allowed:
                raise InputError(
                    f"{name} must be one of {', '.join(allowed)}; got {value!r}", arg=name
                )
        if not self.split or any(s not in ("train", "test") for s in self.split):
            raise InputError(
                f"split must be train, test or train,test; got {','.join(self.split)!r}",
                arg="split",
            )
        if len(set(self.split)) != len(self.split):
            raise InputError(f"split lists a split twice: {','.join(self.split)!r}", arg="split")
        nx = parse_axis(self.x, name="x").num
        ny = parse_axis(self.y, name="y").num if self.y is not None else 1
        if nx * ny > MAX_POINTS:
            raise InputError(
                f"a grid of {nx * ny:,} points (x times y) is beyond what one file holds and "
                f"one run finishes; use at most {MAX_POINTS:,} (e.g. -1:1:1001 on both axes)"
            )
        if self.ckpt3 and not self.ckpt2:
            raise InputError(
                "ckpt3 needs ckpt2 (a plane through three models)", arg=("ckpt3", "ckpt2")
            )
        if self.ckpt3 and self.y is None:
            raise InputError("ckpt3 makes a plane: give y MIN:MAX:NUM too", arg=("ckpt3", "y"))
        if self.ckpt2 and self.directions:
            raise InputError(
                "ckpt2 and directions both choose the plane; give one of them",
                arg=("ckpt2", "directions"),
            )
        for name in ("samples", "batch_size", "chunk_size", "bn_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be a positive integer; got {value}", arg=name)

    def _check_types(self) -> None:
        """Paths may be Path objects (stored as str); a wrong type is a one-line TypeError."""
        for name in ("ckpt", "ckpt2", "ckpt3", "directions", "data_root"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        expected = {
            int: ("samples", "data_seed", "seed", "bn_samples", "batch_size", "chunk_size"),
            str: (
                "ckpt", "model", "ckpt2", "ckpt3", "directions", "dataset", "data_root", "subset",
                "norm", "ignore", "bn", "loss", "precision", "strategy", "device", "label",
                "per_sample",
            ),
            bool: ("orthogonalize",),
        }  # fmt: skip
        optional = {f.name for f in dataclasses.fields(self) if f.default is None}
        for kind, names in expected.items():
            for name in names:
                value = getattr(self, name)
                if value is None and name in optional:
                    continue
                wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
                if isinstance(value, np.integer) and kind is int:
                    object.__setattr__(self, name, int(value))
                    wrong = False
                if wrong:
                    raise TypeError(
                        f"SurfaceConfig.{name} must be {kind.__name__}"
                        f"{' or None' if name in optional else ''}, "
                        f"got {type(value).__name__} {value!r}"
                    )
        if not isinstance(self.model_kwargs, Mapping):
            raise TypeError(
                f"SurfaceConfig.model_kwargs must be a dict, got {type(self.model_kwargs).__name__}"
            )

    @property
    def is_2d(self) -> bool:
        return self.y is not None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        return d

    def differences(self, stored: Mapping[str, Any]) -> list[str]:
        """Settings that differ from a stored config, runtime-only settings excepted."""
        mine = self.to_json()
        return sorted(
            f"{k}: file has {stored.get(k)!r}, now {mine[k]!r}"
            for k in mine
            if k not in RUNTIME_FIELDS and stored.get(k) != mine[k]
        )
