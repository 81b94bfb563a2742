"""Plotting directions (Li et al. 2018, Sec. 4): random, filter-normalized, interpolation.

A direction is a ``dict[str, Tensor]`` keyed by parameter (or buffer) name with the
shapes of the model's tensors. Names absent from a direction mean "does not move".
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from landscape.core.errors import InputError

__all__ = [
    "NORMS",
    "IGNORES",
    "Direction",
    "random_direction",
    "normalize_direction",
    "interpolation_direction",
    "orthogonalize",
    "cosine",
    "direction_norm",
    "check_direction",
    "restrict_direction",
    "selected_names",
]

Direction = dict[str, Tensor]
NORMS = ("filter", "layer", "weight", "none")
IGNORES = ("biasbn", "none")
_EPS = 1e-10  # as in Li et al.'s reference code: guards all-zero filters


def normalize_direction(d: Tensor, w: Tensor, norm: str) -> Tensor:
    """Rescale direction tensor `d` to the scale of weight `w`.

    * ``filter``: every slice ``d[i]`` along dim 0 gets the norm of ``w[i]`` (Li et al.
      2018, Sec. 4), whatever the layer; for the weight kinds a model meets, that is:

      - convolution ``(out, in, kh, kw)``: per output filter (Li et al.'s filter);
      - linear ``(out, in)``: per row, i.e. per output unit (the original code's rule:
        it treats a linear layer as 1x1 filters);
      - embedding ``(tokens, dim)``: per row, i.e. per token's vector (positional
        embeddings: per position);
      - attention projections: as the linear layers they are, per output unit; a fused
        ``in_proj_weight`` ``(3*dim, dim)`` of `nn.MultiheadAttention` per row of q, k
        and v alike;
      - LoRA factors: ``A (r, in)`` per rank component, ``B (out, r)`` per output unit;
      - 1-D tensors (biases, normalization scales and shifts): one filter per element
        would be degenerate. `random_direction` gives them a zero direction with
        ``ignore="biasbn"`` (the original code's default and rule); with
        ``ignore="none"`` they are normalized as a whole, like ``layer`` (the original
        code instead copies the weights themselves there, ``d = w``).
    * ``layer``: the whole tensor gets the norm of `w`.
    * ``weight``: elementwise ``d * w``.
    * ``none``: unchanged.
    """
    if norm == "none":
        return d
    if norm == "weight":
        return d * w
    if norm == "layer" or d.dim() <= 1:
        return d * (w.norm() / (d.norm() + _EPS))
    if norm == "filter":
        dims = tuple(range(1, d.dim()))
        scale = torch.linalg.vector_norm(w, dim=dims, keepdim=True) / (
            torch.linalg.vector_norm(d, dim=dims, keepdim=True) + _EPS
        )
        return d * scale
    raise InputError(f"norm must be one of {NORMS}, got {norm!r}", arg="norm")


def random_direction(
    params: Mapping[str, Tensor],
    *,
    generator: torch.Generator,
    norm: str = "filter",
    ignore: str = "biasbn",
) -> Direction:
    """A Gaussian N(0, 1) direction over `params`, normalized to their scale.

    Args:
        params: the trained weights theta*, by name (parameters only: BN running
            statistics are never moved by a random direction).
        generator: the explicit source of randomness (CPU generator).
        norm: one of `NORMS`.
        ignore: ``biasbn`` gives every parameter with dim <= 1 (biases, BN weight
            and bias) a zero direction; ``none`` makes them random too, normalized
            to the parameter's norm.

    Every parameter draws its noise in the order of `params`, whether ignored or
    not, so a direction does not depend on `ignore` except where it is zeroed.

    Returns:
        ``{name: tensor}``, one tensor per parameter, shaped like it.
    """
    if norm not in NORMS:
        raise InputError(f"norm must be one of {NORMS}, got {norm!r}", arg="norm")
    if ignore not in IGNORES:
        raise InputError(f"ignore must be one of {IGNORES}, got {ignore!r}", arg="ignore")
    out: Direction = {}
    for name, w in params.items():
        w = w.detach()
        d = torch.randn(w.shape, generator=generator, dtype=torch.float32).to(w.device, w.dtype)
        if w.dim() <= 1 and ignore == "biasbn":
            out[name] = torch.zeros_like(w)
        else:
            out[name] = normalize_direction(d, w, norm)
    return out


def interpolation_direction(start: Mapping[str, Tensor], end: Mapping[str, Tensor]) -> Direction:
    """``end - start`` over every floating-point tensor (parameters and BN statistics).

    Each model has its own running statistics, so they are interpolated too.

    Args:
        start, end: two state dicts of one architecture (e.g. two trained networks).

    Returns:
        ``{name: tensor}``: the direction from `start` to `end`.
    """
    missing = sorted(set(start) ^ set(end))
    if missing:
        raise InputError(
            f"the two models are different networks (tensors {missing[:3]} are in one only); "
            "interpolate between checkpoints of the same network"
        )
    out: Direction = {}
    for name, a in start.items():
        b = end[name]
        if a.shape != b.shape:
            raise InputError(
                f"the two models are different networks ({name}: shapes {tuple(a.shape)} and "
                f"{tuple(b.shape)}); interpolate between checkpoints of the same network"
            )
        if a.is_floating_point():
            out[name] = (b.detach() - a.detach()).to(a.dtype)
    return out


def _dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    return float(sum((a[k].double() * b[k].double()).sum() for k in a if k in b))


def direction_norm(d: Mapping[str, Tensor]) -> float:
    return _dot(d, d) ** 0.5


def cosine(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """Cosine similarity between two directions as flat vectors (0 for a zero one)."""
    na, nb = direction_norm(a), direction_norm(b)
    return 0.0 if na == 0 or nb == 0 else _dot(a, b) / (na * nb)


def orthogonalize(dy: Mapping[str, Tensor], dx: Mapping[str, Tensor]) -> Direction:
    """`dy` minus its projection on `dx` (Gram-Schmidt), keeping `dy`'s norm."""
    nx2 = _dot(dx, dx)
    if nx2 == 0:
        return dict(dy)
    coef = _dot(dy, dx) / nx2
    out = {k: v - coef * dx[k].to(v.dtype) if k in dx else v for k, v in dy.items()}
    scale = direction_norm(dy) / max(direction_norm(out), _EPS)
    return {k: v * scale for k, v in out.items()}


def check_direction(
    direction: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    what: str,
    *,
    moves: Iterable[str] = (),
) -> None:
    """Refuse a direction whose names or shapes do not fit the model's tensors, or that
    lacks a tensor of `moves` (the parameters that must move: another network's
    directions whose names are a subset of this one's would leave the rest still)."""
    unknown = sorted(set(direction) - set(state))
    if unknown:
        raise InputError(
            f"{what} names tensors the model lacks: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''}; were the directions made for another model?"
        )
    for name, d in direction.items():
        if tuple(d.shape) != tuple(state[name].shape):
            raise InputError(
                f"{what} {name} has shape {tuple(d.shape)}, the model "
                f"{tuple(state[name].shape)}; were the directions made for another model?"
            )
    absent = [n for n in moves if n not in direction]
    if absent:
        raise InputError(
            f"{what} has no tensor for the model's parameter {absent[0]} ({len(absent)} of "
            f"its parameters missing): it was made for another network, and that part of "
            "this one would never move; use directions made for this network (or pass the "
            "checkpoint they were made for)"
        )


def selected_names(
    names: Iterable[str],
    params: Sequence[str] = (),
    exclude: Sequence[str] = (),
    *,
    parameters: Iterable[str] | None = None,
) -> set[str]:
    """The names that move: matching one glob of `params` (every name when empty) and none
    of `exclude` (`fnmatch`, case-sensitive).

    `parameters` (the model's parameter names): a selection that moves none of them, or a
    glob of `params` that matches no name at all, is refused with the names there are.
    """
    names = list(names)
    keep = {
        n
        for n in names
        if (not params or any(fnmatch.fnmatchcase(n, g) for g in params))
        and not any(fnmatch.fnmatchcase(n, g) for g in exclude)
    }
    some = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
    for g in params:
        if not any(fnmatch.fnmatchcase(n, g) for n in names):
            raise InputError(
                f"params glob {g!r} matches no parameter of the model (its names: {some})",
                arg="params",
            )
    if parameters is not None and not keep.intersection(parameters):
        raise InputError(
            f"params {list(params)} with exclude {list(exclude)} leave no parameter to move "
            f"(the model's names: {some})",
            arg=("params", "exclude"),
        )
    return keep


def restrict_direction(direction: Mapping[str, Tensor], keep: set[str]) -> Direction:
    """`direction` with a zero tensor for every name not in `keep`."""
    return {k: v if k in keep else torch.zeros_like(v) for k, v in direction.items()}
