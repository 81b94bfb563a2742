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
from landscape.core.fields import option
from landscape.data.spec import DataSpec, accepts_data_fields, from_flat
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

MAX_SEED = 2**63 - 1
# Each value array of a surface file is then at most 80 MB; a 51x51 grid is 2,601 points.
MAX_POINTS = 10_000_000

# Settings that change how fast a surface is computed, not its values: a resumed
# run may use others (e.g. start on a laptop, finish on a GPU).
# per_sample too: an existing file's layout decides whether per-sample losses are kept.
RUNTIME_FIELDS = (
    "device", "batch_size", "chunk_size", "strategy", "label", "progress", "per_sample",
    "download", "tolerance",
)  # fmt: skip
PER_SAMPLE_MODES = ("auto", "on", "off")
# per_sample="auto" keeps every sample's loss when they take at most this much (float32).
PER_SAMPLE_AUTO_BYTES = 64 * 2**20


@accepts_data_fields
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
        data: the samples (`DataSpec`: dataset, data_root, download, samples, subset,
            data_seed); those six may also be given as keywords of their own
            (``SurfaceConfig(samples=128)``).
        split: ``"train"``, ``"test"`` or ``"train,test"`` (or a tuple of them).
        x, y: the alpha and beta grids: ``"-1:1:51"``, ``(-1, 1, 51)`` or the evenly
            spaced values as a list or array; no `y` gives a 1-D surface.
        norm: direction normalization, ``filter`` (Li et al.) | layer | weight | none.
        ignore: ``biasbn``: 1-D parameters (biases, BatchNorm) get a zero direction.
        seed: the direction seed; the same seed gives the same directions everywhere.
        orthogonalize: make the y direction orthogonal to x.
        tolerance: adaptive refinement (`landscape.surface.refine`): a point of a finer
            coarse-to-fine level is evaluated only where the coarser levels do not
            predict its loss within this (a loss difference); the others are stored as the
            prediction and marked interpolated. May change on resume: a smaller one, or
            None, evaluates what is missing.
        params, exclude: globs (`fnmatch`) on the names of ``model.named_parameters()``
            (and buffers, for directions that move them): only parameters matching one of
            `params` (all when empty) and none of `exclude` move; the others get zero
            directions. Recorded in the file; a resume with another selection is refused.
        task: ``module:function`` returning a task (``loss_fn``, optional ``metrics_fn``
            and ``data``) for the command line; from Python pass ``loss_fn=`` to
            `compute_surface`. With a task, `loss` is not used.
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

    ckpt: str | None = option(
        group="model",
        help="trained weights: a checkpoint, a bare state_dict, or pretrained:NAME",
        metavar="PATH",
        required=True,
    )
    model: str | None = option(
        group="model",
        help="network name or module.path:function; needed for a bare state_dict, or to trust a "
        "checkpoint that names your own builder",
        metavar="NAME",
    )
    model_kwargs: Mapping[str, Any] = option(
        group="model",
        help="builder arguments, e.g. '{\"num_classes\": 100}'",
        default_factory=dict,
        metavar="JSON",
        type="json_object",
    )
    ckpt2: str | None = option(
        group="grid and directions",
        help="interpolate: alpha=0 is --ckpt, alpha=1 this",
        metavar="PATH",
    )
    ckpt3: str | None = option(
        group="grid and directions",
        help="with --ckpt2: the plane through three models",
        metavar="PATH",
    )
    directions: str | None = option(
        group="grid and directions",
        help="take directions from a surface or directions file",
        metavar="FILE",
    )
    data: DataSpec = field(default_factory=DataSpec)
    split: tuple[str, ...] = option(
        group=None,
        help="train, test or train,test",
        default=("train",),
        metavar="LIST",
        cli_default="train",
    )
    x: str = option(
        group="grid and directions", help="alpha grid", default="-1:1:51", metavar="MIN:MAX:NUM"
    )
    y: str | None = option(
        group="grid and directions", help="beta grid; absent: 1-D", metavar="MIN:MAX:NUM"
    )
    norm: str = option(
        group="grid and directions", help="direction normalization", default="filter", choices=NORMS
    )
    ignore: str = option(
        group="grid and directions",
        help="biasbn: 1-D parameters get a zero direction",
        default="biasbn",
        choices=IGNORES,
    )
    seed: int = option(
        group="grid and directions", help="direction seed", default=0, type="seed", metavar="INT"
    )
    orthogonalize: bool = option(
        group="grid and directions",
        help="make dy orthogonal to dx",
        default=False,
        action="store_true",
    )
    tolerance: float | None = option(
        group="grid and directions",
        help="adaptive refinement: evaluate a point of a finer level only where the coarser "
        "ones do not predict its loss within TOL (the rest is interpolated and marked so); "
        "a rerun with a smaller TOL, or none, evaluates what is missing",
        metavar="TOL",
        type="positive_float",
    )
    params: tuple[str, ...] = option(
        group="grid and directions",
        help="move only the parameters whose names (model.named_parameters()) match one of "
        "these globs, e.g. 'blocks.*.attn.*'; the others get zero directions (all move when "
        "absent)",
        default=(),
        metavar="GLOB[,GLOB]",
        cli_default=None,
    )
    exclude: tuple[str, ...] = option(
        group="grid and directions",
        help="keep the parameters whose names match one of these globs fixed (after --params)",
        default=(),
        metavar="GLOB[,GLOB]",
        cli_default=None,
    )
    task: str | None = option(
        group="evaluation",
        help="a function returning {'loss_fn': f(model, batch) -> per-sample losses, "
        "'metrics_fn' (optional), 'data' (optional: batches, or split -> batches)}; replaces "
        "--loss (docs/api.md)",
        metavar="MODULE:FUNCTION",
    )
    bn: str = option(
        group="evaluation",
        help="eval: the checkpoint's running statistics; recompute: re-estimate them at every "
        "point from --bn-samples training images",
        default="eval",
        choices=BN_MODES,
    )
    bn_samples: int = option(
        group="evaluation",
        help="training images of --bn recompute",
        default=2048,
        metavar="N",
        type="positive_int",
    )
    loss: str = option(
        group="evaluation", help="the loss of every point", default="ce", choices=LOSSES
    )
    precision: str = option(
        group="evaluation",
        help="arithmetic (tf32, bf16: GPU)",
        default="fp32",
        choices=EVAL_PRECISIONS,
    )
    batch_size: int | None = option(
        group="evaluation",
        help="samples per forward pass (automatic when absent)",
        metavar="INT",
        type="positive_int",
    )
    chunk_size: int | None = option(
        group="evaluation",
        help="grid points per pass on the GPU (automatic when absent)",
        metavar="K",
        type="positive_int",
    )
    strategy: str = option(
        group="evaluation",
        help="evaluation engine (auto: vmap on GPU, folded BN on CPU)",
        default="auto",
        choices=STRATEGIES,
    )
    device: str = option(group="evaluation", help="auto | cpu | cuda | cuda:N", default="auto")
    label: str | None = option(
        group="output", help="a name for figures (the model name when absent)"
    )
    per_sample: str = option(
        group="output",
        help="keep every sample's loss at every point, for bootstrap intervals in landscape "
        "metrics: auto when they take at most 64 MB",
        default="auto",
        choices=PER_SAMPLE_MODES,
    )

    def __post_init__(self) -> None:
        self._check_types()
        # Plain Python values are welcome: split="train,test", x=(-1, 1, 51) or an array.
        split = self.split.split(",") if isinstance(self.split, str) else self.split
        object.__setattr__(self, "split", tuple(s.strip() for s in split))
        object.__setattr__(self, "x", axis_text(self.x, name="x"))
        if self.y is not None:
            object.__setattr__(self, "y", axis_text(self.y, name="y"))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        for name in ("params", "exclude"):
            object.__setattr__(self, name, _globs(getattr(self, name), name))
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
        if self.tolerance is not None:
            if isinstance(self.tolerance, bool) or not isinstance(
                self.tolerance, int | float | np.floating | np.integer
            ):
                raise TypeError(
                    f"SurfaceConfig.tolerance must be float or None, got "
                    f"{type(self.tolerance).__name__} {self.tolerance!r}"
                )
            object.__setattr__(self, "tolerance", float(self.tolerance))
            if not (np.isfinite(self.tolerance) and self.tolerance > 0):
                raise InputError(
                    f"tolerance must be a positive number (a loss difference, e.g. 0.01); got "
                    f"{self.tolerance!r}",
                    arg="tolerance",
                )
        if not 0 <= self.seed <= MAX_SEED:  # what torch.Generator.manual_seed takes
            raise InputError(f"seed must be in 0..2**63 - 1; got {self.seed}", arg="seed")
        for name in ("batch_size", "chunk_size", "bn_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be a positive integer; got {value}", arg=name)

    def _check_types(self) -> None:
        """Paths may be Path objects (stored as str); a wrong type is a one-line TypeError."""
        for name in ("ckpt", "ckpt2", "ckpt3", "directions"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        expected = {
            int: ("seed", "bn_samples", "batch_size", "chunk_size"),
            str: (
                "ckpt", "model", "ckpt2", "ckpt3", "directions", "norm", "ignore", "bn", "loss",
                "precision", "strategy", "device", "label", "per_sample", "task",
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
        """The settings as a surface file stores them: flat, the data record's included."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "data"}
        d["split"] = list(self.split)
        d["params"], d["exclude"] = list(self.params), list(self.exclude)
        d["model_kwargs"] = dict(self.model_kwargs)
        return {**self.data.to_json(), **d}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> SurfaceConfig:
        """The config a surface file stores (`to_json`), settings it does not know ignored."""
        return from_flat(cls, stored)

    def differences(self, stored: Mapping[str, Any]) -> list[str]:
        """Settings that differ from a stored config, runtime-only settings excepted."""
        mine = self.to_json()
        # A setting added after a file was written is absent from it: the file used its default.
        defaults = {"params": [], "exclude": [], "task": None}
        return sorted(
            f"{k}: file has {stored.get(k, defaults.get(k))!r}, now {mine[k]!r}"
            for k in mine
            if k not in RUNTIME_FIELDS and stored.get(k, defaults.get(k)) != mine[k]
        )


def _globs(value: Any, name: str) -> tuple[str, ...]:
    """Parameter-name globs from ``"a.*,b.*"`` or a sequence of strings."""
    if value is None:  # the command line's flag not given
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise TypeError(
            f"SurfaceConfig.{name} must be a list of globs or 'GLOB,GLOB', got "
            f"{type(value).__name__} {value!r}"
        )
    out = []
    for g in value:
        if not isinstance(g, str):
            raise TypeError(f"SurfaceConfig.{name} must hold strings, got {type(g).__name__} {g!r}")
        if g.strip():
            out.append(g.strip())
    return tuple(out)
