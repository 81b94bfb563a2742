"""Optimization trajectories (Li et al. 2018, Sec. 7): PCA of a run's checkpoints.

The matrix ``D`` has one row ``theta_i - theta_final`` per checkpoint (T x P). Its
principal axes come from the T x T Gram matrix ``G = D D^T`` (never a P x P matrix,
and never all of D at once): with ``G = U S^2 U^T`` the axes are ``v_k = D^T u_k / s_k``
and the coordinates of checkpoint i are ``d_i . v_k = s_k u_ik``.

By default the PCA is uncentered, so the plane passes through theta_final, where the
surface is drawn, and the sum of squared off-plane distances is the least possible.
Li et al.'s code used scikit-learn's (centered) PCA; ``center=True`` reproduces it. In
both cases the path is the projection of ``theta_i - theta_final`` onto the axes, and
the off-plane distance of each checkpoint says how faithful that drawing is.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from landscape.core.errors import InputError
from landscape.io.surface_file import DIRECTIONS_FORMAT
from landscape.io.trajectory import write_directions
from landscape.models import CheckpointError, clean_state_dict, read_checkpoint

__all__ = [
    "OFF_PLANE_WARN",
    "trajectory_pca",
    "DIRECTIONS_FORMAT",
    "Trajectory",
    "PCAResult",
    "read_trajectory",
    "path_grid",
    "pca_directions",
]

_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class Trajectory:
    """A training run's checkpoints in epoch order; `final` is the last one's state.

    Attributes:
        states: each checkpoint's state dict.
        epochs: each checkpoint's epoch.
        paths: the files they were read from.
    """

    states: list[dict[str, Tensor]]
    epochs: list[int]
    paths: list[Path]

    @property
    def final(self) -> dict[str, Tensor]:
        return self.states[-1]


def _epoch_of(path: Path, ckpt: Mapping[str, Any]) -> int | None:
    if isinstance(ckpt.get("epoch"), int):
        return ckpt["epoch"]
    match = re.search(r"(\d+)", path.stem)
    return int(match.group(1)) if match else None


def read_trajectory(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    map_location: str | torch.device = "cpu",
) -> Trajectory:
    """Read a run's checkpoints, sorted by their stored epoch.

    Args:
        source: a run folder (``epoch_000.pt``, ``epoch_001.pt``, ..., ``final.pt``) or
            a list of checkpoint files (project checkpoints or bare state_dicts; a bare
            file's epoch is taken from the digits in its name).
        map_location: where tensors are loaded.

    ``final.pt`` is the last point; an epoch checkpoint with the same epoch is dropped
    as its duplicate.

    Returns:
        The `Trajectory`: states, epochs and paths in epoch order.

    Raises:
        CheckpointError: no checkpoints, an unreadable file, or an epoch that is unknown.
    """
    if isinstance(source, str | os.PathLike):
        folder = Path(source)
        if not folder.is_dir():
            raise CheckpointError(f"run folder {str(folder)!r} does not exist; check the path")
        paths = sorted(folder.glob("epoch_*.pt")) + sorted(folder.glob("final.pt"))
    else:
        paths = [Path(p) for p in source]
    if len(paths) < 2:
        raise CheckpointError(
            f"a trajectory needs at least 2 checkpoints, found {len(paths)}"
            + (f" in {str(source)!r}" if isinstance(source, str | os.PathLike) else "")
            + "; pass a run folder of landscape train (epoch_*.pt) or 2 or more checkpoints"
        )
    entries = []
    first: tuple[Path, Any, dict[str, Tensor]] | None = None
    for path in paths:
        ckpt = read_checkpoint(path, map_location=map_location)
        state = ckpt["state_dict"] if isinstance(ckpt.get("state_dict"), dict) else ckpt
        epoch = _epoch_of(path, ckpt)
        if epoch is None:
            raise CheckpointError(f"{str(path)!r} records no epoch and its name has no number")
        state = clean_state_dict(state)
        _check_finite_state(state, f"checkpoint {str(path)!r}", CheckpointError)
        model = ckpt.get("model") if isinstance(ckpt.get("model"), str) else None
        if first is None:
            first = (path, model, state)
        else:
            _check_same_network(
                state, first[2], f"checkpoint {str(path)!r}", f"{str(first[0])!r}", CheckpointError
            )
            if model is not None and first[1] is not None and model != first[1]:
                raise CheckpointError(
                    f"checkpoint {str(path)!r} is a {model}, {str(first[0])!r} a {first[1]}: "
                    "a trajectory is the checkpoints of one training run - pass only that run's"
                )
        entries.append((epoch, path.stem == "final", path, state))
    entries.sort(key=lambda e: (e[0], e[1]))
    if any(e[1] for e in entries):
        final_epoch = next(e[0] for e in entries if e[1])
        entries = [e for e in entries if e[1] or e[0] != final_epoch]
        entries.sort(key=lambda e: (e[1], e[0]))  # final.pt last
    return Trajectory(
        states=[e[3] for e in entries],
        epochs=[e[0] for e in entries],
        paths=[e[2] for e in entries],
    )


# A checkpoint farther off the PCA plane than this fraction of its distance to theta_final
# is drawn misleadingly close to it: warned about.
OFF_PLANE_WARN = 0.5


@dataclass(frozen=True)
class PCAResult:
    """Two principal directions of a trajectory and the path projected onto them.

    Attributes:
        directions: ``{"x": {name: tensor}, "y": ...}``, unit norm (use with ``norm=none``).
        explained_variance_ratio: (2,) of the two directions.
        singular_values: (T,) all of them, descending.
        coords: (T, 2) alpha, beta of each checkpoint.
        off_plane_distance: (T,) each checkpoint's distance to the plane.
        distance: (T,) each checkpoint's distance to theta_final.
        epochs: (T,) the checkpoints' epochs.
        center: whether the mean was subtracted first.
        names: the parameters in the PCA.
        sources: the checkpoint files, when read from files.
        ignore: ``"biasbn"`` when biases and BN weights stayed out of the PCA.
    """

    directions: dict[str, dict[str, Tensor]]  # {"x": {name: (shape)}, "y": ...}, unit norm
    explained_variance_ratio: np.ndarray  # (2,)
    singular_values: np.ndarray  # (T,) all of them, descending
    coords: np.ndarray  # (T, 2) alpha, beta of each checkpoint
    off_plane_distance: np.ndarray  # (T,) ||d_i - projection||
    distance: np.ndarray  # (T,) ||theta_i - theta_final||
    epochs: np.ndarray  # (T,)
    center: bool = False
    names: list[str] = field(default_factory=list)  # parameters in the PCA
    sources: list[Path] = field(default_factory=list)  # the checkpoints, when read from files
    ignore: str = "biasbn"  # biasbn: biases and BN weights stayed out of the PCA

    def far_off_plane(self, threshold: float = OFF_PLANE_WARN) -> list[int]:
        """Epochs whose distance to the plane exceeds `threshold` times their distance to
        theta_final: there the drawn path is only a shadow of the real one."""
        return [
            int(self.epochs[i])
            for i in range(len(self.epochs))
            if self.distance[i] > 0 and self.off_plane_distance[i] > threshold * self.distance[i]
        ]

    def __repr__(self) -> str:
        ev = self.explained_variance_ratio
        return (
            f"PCAResult({len(self.epochs)} checkpoints, epochs {int(self.epochs[0])}.."
            f"{int(self.epochs[-1])}, explained variance x {ev[0]:.1%} y {ev[1]:.1%}, "
            f"{len(self.names)} tensors)"
        )


def _check_finite_state(
    state: Mapping[str, Any], what: str, error: type[ValueError] = InputError
) -> None:
    """Refuse a state whose floating-point tensors hold NaN or inf: a diverged run's
    checkpoint gives NaN directions and a NaN path."""
    for name, t in state.items():
        if not isinstance(t, Tensor):
            raise error(
                f"{what} holds a {type(t).__name__} as {name!r}, not a tensor; pass checkpoints "
                "of landscape train or bare state_dicts"
            )
        if torch.is_floating_point(t) or torch.is_complex(t):
            if not bool(torch.isfinite(t).all()):
                raise error(
                    f"{what} holds NaN or inf in {name!r} (a diverged run?); a trajectory "
                    "needs finite weights - leave that checkpoint out"
                )


def _check_same_network(
    state: Mapping[str, Any],
    reference: Mapping[str, Any],
    what: str,
    other: str,
    error: type[ValueError] = InputError,
) -> None:
    """Refuse states of different networks: differing tensor names or shapes."""
    missing = [n for n in reference if n not in state]
    extra = [n for n in state if n not in reference]
    if missing or extra:
        side = (
            f"lacks {missing[0]!r} of {other}"
            if missing
            else f"has {extra[0]!r}, which {other} lacks"
        )
        raise error(
            f"{what} is another network: it {side} ({len(missing)} tensors missing, "
            f"{len(extra)} extra); a trajectory is the checkpoints of one training run - "
            "pass only that run's"
        )
    for n, t in reference.items():
        s = state[n]
        if isinstance(t, Tensor) and isinstance(s, Tensor) and tuple(s.shape) != tuple(t.shape):
            raise error(
                f"{what} is another network: its {n!r} has shape {tuple(s.shape)}, "
                f"{tuple(t.shape)} in {other}; a trajectory is the checkpoints of one "
                "training run - pass only that run's"
            )


def _default_names(final: Mapping[str, Tensor]) -> list[str]:
    return [
        n
        for n, t in final.items()
        if torch.is_floating_point(t) and not n.endswith(_BUFFER_SUFFIXES)
    ]


def pca_directions(
    states: Sequence[Mapping[str, Tensor]],
    final: Mapping[str, Tensor],
    *,
    names: Sequence[str] | None = None,
    ignore_1d: bool = True,
    center: bool = False,
    epochs: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
) -> PCAResult:
    """PCA of ``theta_i - theta_final`` through the T x T Gram matrix.

    Args:
        states: the checkpoints' state dicts (the final one may be among them).
        final: theta_final, the point the surface is drawn around.
        names: tensors that are parameters (default: every floating-point entry except
            BatchNorm running statistics).
        ignore_1d: give biases and BN weights a zero direction and leave them out of the
            PCA (Li et al.'s ``ignore=biasbn``).
        center: subtract the mean of the rows first (Li et al.'s scikit-learn PCA).
        epochs: one label per state (default 0..T-1).
        generator: only used when the trajectory spans fewer than two dimensions, to
            pick a unit direction orthogonal to the first one.

    Returns:
        A `PCAResult`; its directions hold every name (ignored ones as zeros), float32.
    """
    n_states = len(states)
    if n_states < 2:
        raise InputError(f"PCA needs at least 2 checkpoints, got {n_states}", arg="states")
    if epochs is not None and len(epochs) != n_states:
        raise InputError(
            f"epochs has {len(epochs)} labels for {n_states} states; give one per state",
            arg="epochs",
        )
    labels = [f"epoch {e}" for e in epochs] if epochs is not None else range(n_states)
    _check_finite_state(final, "final")
    for label, state in zip(labels, states, strict=True):
        what = f"the state of {label}" if epochs is not None else f"states[{label}]"
        _check_finite_state(state, what)
        _check_same_network(state, final, what, "final")
    names = list(names) if names is not None else _default_names(final)
    unknown = [n for n in names if n not in final]
    if unknown:
        raise InputError(
            f"names holds {unknown[0]!r}, which final has not; name tensors of the state dicts",
            arg="names",
        )
    used = [n for n in names if not (ignore_1d and final[n].dim() <= 1)]
    if not used:
        raise InputError("no parameter left for the PCA; pass names= or ignore_1d=False")

    def rows(name: str) -> Tensor:  # (T, numel) in float64
        ref = final[name].detach().to("cpu", torch.float64).reshape(-1)
        return torch.stack(
            [s[name].detach().to("cpu", torch.float64).reshape(-1) - ref for s in states]
        )

    gram = torch.zeros(n_states, n_states, dtype=torch.float64)
    for n in used:
        r = rows(n)
        gram += r @ r.T
    norms_sq = torch.diagonal(gram).clone()  # ||d_i||^2, before centering
    centering = torch.eye(n_states, dtype=torch.float64)
    if center:
        centering -= 1.0 / n_states
        gram = centering @ gram @ centering
    _check_variance(gram, final, used)
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    sing = evals.sqrt()
    # Below this, an axis is rounding noise (the Gram matrix squares the condition number):
    # e.g. a straight-line trajectory has one axis only.
    degenerate = [bool(sing[k] <= 1e-6 * max(float(sing[0]), 1e-300)) for k in range(2)]
    # Axis k: v_k = D_c^T u_k / s_k with D_c = centering @ D, i.e. weights c_k over the rows.
    weights = [centering @ evecs[:, k] / sing[k] if not degenerate[k] else None for k in range(2)]
    axes: list[dict[str, Tensor]] = [{}, {}]
    for n in used:
        r = rows(n)
        for k in range(2):
            if weights[k] is not None:
                axes[k][n] = (weights[k] @ r).reshape(final[n].shape)
    for k in range(2):
        if degenerate[k]:
            axes[k] = _orthogonal_unit(axes[:k], final, used, generator)
        else:  # exact unit norm and orthogonality, whatever eigh's rounding
            axes[k] = _orthonormalize(axes[k], axes[:k], used)
    # Coordinates: projections of the uncentered d_i (the path through theta_final).
    coords = np.zeros((n_states, 2))
    for n in used:
        r = rows(n)
        for k in range(2):
            coords[:, k] += (r @ axes[k][n].reshape(-1)).numpy()
    for k in range(2):  # a fixed sign: the first checkpoint on the positive side
        if coords[0, k] < 0:
            coords[:, k] *= -1
            axes[k] = {n: -t for n, t in axes[k].items()}
    total = float(evals.sum())
    ratio = np.array([float(evals[k]) / total if total > 0 else 0.0 for k in range(2)])
    dist = norms_sq.clamp_min(0).sqrt().numpy()
    off = np.sqrt(np.clip(dist**2 - (coords**2).sum(axis=1), 0.0, None))
    directions = {
        axis: {
            n: axes[k][n].float() if n in axes[k] else torch.zeros(final[n].shape) for n in names
        }
        for k, axis in enumerate(("x", "y"))
    }
    return PCAResult(
        directions=directions,
        explained_variance_ratio=ratio,
        singular_values=sing.numpy(),
        coords=coords,
        off_plane_distance=off,
        distance=dist,
        epochs=np.asarray(epochs if epochs is not None else range(n_states), dtype=np.int64),
        center=center,
        names=used,
        ignore="biasbn" if ignore_1d else "none",
    )


# Checkpoints closer to each other than this fraction of the final weights' norm are the
# same point (float32 rounding): there is no path to find directions in.
NO_VARIANCE = 1e-7


def _check_variance(gram: Tensor, final: Mapping[str, Tensor], used: Sequence[str]) -> None:
    """Refuse a path with no variance (identical checkpoints): its directions would be
    arbitrary and its explained variance 0 %."""
    scale = sum(float(final[n].detach().double().pow(2).sum()) for n in used) ** 0.5
    spread = max(float(torch.diagonal(gram).clamp_min(0).max()), 0.0) ** 0.5
    if spread <= NO_VARIANCE * max(scale, 1e-30):
        raise InputError(
            f"the checkpoints do not move (they differ by at most {spread:.3g}, the final "
            f"weights' norm is {scale:.3g}): the path has no variance to find directions in "
            "(the same checkpoint given several times?); pass checkpoints of different epochs "
            "of one run"
        )


def _orthonormalize(
    v: Mapping[str, Tensor], previous: Sequence[Mapping[str, Tensor]], used: Sequence[str]
) -> dict[str, Tensor]:
    """Gram-Schmidt of `v` against the unit vectors `previous`, then unit norm."""
    v = dict(v)
    for p in previous:
        dot = sum(float((v[n] * p[n]).sum()) for n in used)
        v = {n: v[n] - dot * p[n] for n in used}
    norm = sum(float((t * t).sum()) for t in v.values()) ** 0.5
    return {n: t / norm for n, t in v.items()}


def _orthogonal_unit(
    previous: Sequence[Mapping[str, Tensor]],
    final: Mapping[str, Tensor],
    used: Sequence[str],
    generator: torch.Generator | None,
) -> dict[str, Tensor]:
    """A random unit vector over `used`, orthogonal to the `previous` unit vectors."""
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    v = {n: torch.randn(final[n].shape, generator=gen, dtype=torch.float64) for n in used}
    return _orthonormalize(v, previous, used)


def trajectory_pca(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    center: bool = False,
    ignore: str = "biasbn",
    out: str | os.PathLike | None = None,
) -> PCAResult:
    """PCA directions of a training run in one call (Li et al. 2018, Sec. 7).

    Args:
        source: a run folder of ``landscape train`` or a list of checkpoint files.
        center: subtract the mean first (Li et al.'s scikit-learn PCA).
        ignore: ``"biasbn"`` keeps biases and BN weights out of the PCA, ``"none"``.
        out: also write the directions file (``landscape compute --directions``).

    Returns:
        The `PCAResult`: directions, explained variance and the projected path.

    Warns (`UserWarning`, as the command line does) when checkpoints lie far off the plane.
    """
    if ignore not in ("biasbn", "none"):
        raise InputError(f"ignore must be biasbn or none; got {ignore!r}", arg="ignore")
    run = read_trajectory(source)
    result = pca_directions(
        run.states, run.final, center=center, ignore_1d=ignore == "biasbn", epochs=run.epochs
    )
    result = dataclasses.replace(result, sources=list(run.paths))
    far = result.far_off_plane()
    if far:
        warnings.warn(
            f"epochs {', '.join(map(str, far))} lie far off the plane (off-plane distance > "
            f"{OFF_PLANE_WARN:.0%} of their distance to the final weights): the drawn path is "
            "only a shadow of the real one",
            stacklevel=2,
        )
    if out is not None:
        write_directions(out, result)
    return result


def path_grid(coords: np.ndarray, *, num: int = 51) -> tuple[str, str]:
    """Alpha and beta grids ``"MIN:MAX:NUM"`` (``SurfaceConfig.x``, ``.y``; ``--x``, ``--y``)
    holding theta_final (0, 0) and the whole path, with a 20 % margin on each side.

    An axis the path hardly moves along (e.g. a straight path's second one) still gets
    half the width of the other, so the surface around the path is seen.

    Args:
        coords: (T, 2) alpha, beta of each checkpoint (`PCAResult.coords`).
        num: points per axis.

    Returns:
        ``(x, y)``, each ``"MIN:MAX:NUM"``.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) == 0:
        raise InputError(f"coords must be (T, 2) path coordinates, got shape {coords.shape}")
    if not np.isfinite(coords).all():
        raise InputError(
            "coords holds NaN or inf; pass the path of finite checkpoints", arg="coords"
        )
    if num < 2:
        raise InputError(f"num must be at least 2, got {num}")
    lo = np.minimum(coords.min(axis=0), 0.0)  # (2,)
    hi = np.maximum(coords.max(axis=0), 0.0)
    scale = float((hi - lo).max()) or 1.0
    width = np.maximum(hi - lo, 0.5 * scale) * 1.4
    mid = (lo + hi) / 2
    x, y = (f"{m - w / 2:.3g}:{m + w / 2:.3g}:{num}" for m, w in zip(mid, width, strict=True))
    return x, y
