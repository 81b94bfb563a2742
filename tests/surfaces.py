"""Analytic surface files for tests: known values, any grid shape, optionally half computed.

Usage from a test module (pytest puts ``tests/`` on ``sys.path``)::

    from surfaces import make_surface_file, analytic_values

    path = make_surface_file(tmp_path, kind="bowl", shape=(21, 17), label="resnet56")
    path = make_surface_file(tmp_path, "line.h5", shape=(31,))          # a 1-D surface
    path = make_surface_file(tmp_path, kind="spiky", partial=0.5)        # half NaN

The values are pure functions of (alpha, beta) (`analytic_values`), so a test can check
what it reads against an independent computation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from landscape.io.surface_file import SurfaceWriter, create_surface_file, value_name

__all__ = ["KINDS", "analytic_values", "make_legacy_file", "make_surface_file"]

KINDS = ("bowl", "sines", "spiky")


def analytic_values(
    kind: str, alpha: np.ndarray, beta: np.ndarray | None = None, *, split: str = "train"
) -> dict[str, np.ndarray]:
    """Loss and accuracy of an analytic surface on the grid (indexing="ij").

    kinds: ``bowl`` (a smooth convex bowl, minimum 0.1 at the origin), ``sines`` (a bowl
    with ripples, several local minima), ``spiky`` (a bowl with a peak ~1e4 at one corner,
    like the chaotic surfaces of plain nets). The test split sits a little higher.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    a = np.asarray(alpha, dtype=np.float64)
    if beta is None:
        x, y = a, np.zeros_like(a)
    else:
        x, y = np.meshgrid(a, np.asarray(beta, dtype=np.float64), indexing="ij")
    loss = 0.1 + 2.0 * x**2 + 3.0 * y**2
    if kind == "sines":
        loss = loss + 0.3 * (1 + np.sin(6 * x) * np.cos(5 * y))
    elif kind == "spiky":
        loss = loss + 1e4 * np.exp(-((x - 0.8) ** 2 + (y - 0.8) ** 2) / 0.01)
    if split != "train":
        loss = loss * 1.2 + 0.05
    accuracy = np.clip(np.exp(-loss + 0.1), 0.0, 1.0)
    return {"loss": loss, "accuracy": accuracy}


def make_surface_file(
    tmp_path: str | Path,
    name: str = "surface.h5",
    *,
    kind: str = "bowl",
    shape: Sequence[int] = (21, 17),
    extent: float = 1.0,
    label: str | None = None,
    splits: Sequence[str] = ("train", "test"),
    partial: float | None = None,
    config: Mapping[str, Any] | None = None,
    errors: bool = False,
) -> Path:
    """Write an analytic surface file with store.create_surface_file + SurfaceWriter.

    Args:
        tmp_path: folder for the file.
        name: file name inside `tmp_path`.
        kind: see `analytic_values`.
        shape: ``(nx, ny)`` for a 2-D surface, ``(nx,)`` for a 1-D one.
        extent: the grid spans ``[-extent, extent]`` on each axis.
        label: stored as ``config["label"]`` when given.
        splits: which ``{split}_loss`` / ``{split}_accuracy`` arrays to write.
        partial: fraction in (0, 1) of points left NaN (not computed), or None for all.
            The computed points are the first ones in row-major order, like a run that
            was interrupted.
        config: entries that override or extend the default settings.
        errors: also store standard errors (``{split}_loss_se``: 1 % of the loss,
            ``{split}_accuracy_se``: 0.01), as format version 2 files have.

    Returns:
        The path of the new file.
    """
    path = Path(tmp_path) / name
    alpha = np.linspace(-extent, extent, shape[0])
    beta = np.linspace(-extent, extent, shape[1]) if len(shape) > 1 else None
    names = [value_name(s, m) for s in splits for m in ("loss", "accuracy")]
    if errors:
        names += [f"{n}_se" for n in names]
    settings: dict[str, Any] = {
        "model": "resnet56",
        "norm": "filter",
        "ignore": "biasbn",
        "seed": 0,
        "samples": 128,
        "dataset": "synthetic",
        "split": ",".join(splits),
        "kind": kind,
    }
    if label is not None:
        settings["label"] = label
    settings.update(config or {})
    directions = {"x": {"fc.weight": torch.ones(2, 3)}}
    if beta is not None:
        directions["y"] = {"fc.weight": torch.full((2, 3), 0.5)}
    create_surface_file(
        path,
        alpha=alpha,
        beta=beta,
        value_names=names,
        directions=directions,
        config=settings,
        provenance={"package": "landscape-tests"},
    )
    grid = tuple(len(c) for c in (alpha, beta) if c is not None)
    done = np.ones(grid, dtype=bool)
    if partial is not None:
        if not 0.0 < partial < 1.0:
            raise ValueError(f"partial must be a fraction in (0, 1), got {partial!r}")
        n_done = int(round(done.size * (1.0 - partial)))
        flat = np.zeros(done.size, dtype=bool)
        flat[:n_done] = True
        done = flat.reshape(grid)
    index = np.nonzero(done)
    values = {}
    for split in splits:
        exact = analytic_values(kind, alpha, beta, split=split)
        for metric, v in exact.items():
            values[value_name(split, metric)] = v[index]
            if errors:
                se = 0.01 * v if metric == "loss" else np.full_like(v, 0.01)
                values[f"{value_name(split, metric)}_se"] = se[index]
    with SurfaceWriter(path) as writer:
        writer.write(index, values)
    return path


def make_legacy_file(
    tmp_path: str | Path,
    name: str = "model_300.t7_weights_xignore=biasbn_xnorm=filter.h5_[-1.0,1.0,9]x[-1.0,1.0,5].h5",
    *,
    kind: str = "bowl",
    shape: Sequence[int] = (9, 5),
    splits: Sequence[str] = ("train",),
    uncomputed: int = 0,
) -> Path:
    """Write a surface file the way the original loss-landscape code does.

    Its layout: ``xcoordinates``, ``ycoordinates`` and ``{split}_loss``, ``{split}_acc``
    (accuracy in percent) of shape ``(nx, ny)`` filled through the flat index
    ``k = j * nx + i`` for the point ``(x[i], y[j])`` (its scheduler enumerates
    ``numpy.meshgrid(x, y)``), so a square array is stored [y, x]. Points not computed yet
    hold -1. `uncomputed` leaves that many of the last points at -1.
    """
    path = Path(tmp_path) / name
    nx = shape[0]
    alpha = np.linspace(-1.0, 1.0, nx)
    beta = np.linspace(-1.0, 1.0, shape[1]) if len(shape) > 1 else None
    with h5py.File(path, "w") as f:
        f["dir_file"] = "model_300.t7_weights_xignore=biasbn_xnorm=filter.h5"
        f["xcoordinates"] = alpha
        if beta is not None:
            f["ycoordinates"] = beta
        for split in splits:
            exact = analytic_values(kind, alpha, beta, split=split)
            for metric, key, scale in (("loss", "loss", 1.0), ("accuracy", "acc", 100.0)):
                v = exact[metric] * scale  # (nx, ny): [i, j] is (x[i], y[j])
                flat = v.T.ravel() if beta is not None else v.ravel()  # k = j * nx + i
                if uncomputed:
                    flat = flat.copy()
                    flat[-uncomputed:] = -1.0
                f[f"{split}_{key}"] = flat.reshape(v.shape)
        f.attrs["note"] = json.dumps({"written_by": "tests.surfaces.make_legacy_file"})
    return path


def assert_points_match_one_process(path: Path, cli_args: Sequence[str], limit: int = 40) -> int:
    """Points computed in `path` (a file left half done) hold, bit for bit, what one process
    evaluating them alone gets, with the file's directions. Checks up to `limit` of them,
    spread over the computed points; returns how many were computed.

    `cli_args` are the ``landscape compute`` arguments that wrote the file (a pointwise
    strategy: every point evaluated alone, so no grid needs to be finished to compare).
    """
    from landscape.compute import build_parser, config_from_args
    from landscape.io.surface_file import (
        has_per_sample,
        read_directions,
        read_per_sample,
        read_surface,
    )
    from landscape.surface.engine import load_inputs, prepare

    config = config_from_args(build_parser().parse_args(list(cli_args)))
    cpu = torch.device("cpu")
    job = load_inputs(config, cpu)
    ready = prepare(job.model, job.data, job.config, device=cpu, bn_data=job.bn_data)
    per_sample = has_per_sample(path)
    evaluator = ready.evaluator(job.config, read_directions(path), per_sample=per_sample)
    surface = read_surface(path)
    flat = np.flatnonzero(surface.computed)
    pick = flat[np.linspace(0, len(flat) - 1, min(limit, len(flat))).astype(int)]
    index = np.unravel_index(pick, surface.computed.shape)
    beta = surface.beta[index[1]] if surface.beta is not None else np.zeros(len(pick))
    values = evaluator(np.stack([surface.alpha[index[0]], beta], axis=1))
    stored = dict(surface.values)  # the means, accuracies and their standard errors
    for split in surface.splits if per_sample else ():  # and every sample's loss
        stored[f"per_sample/{split}_loss"] = read_per_sample(path, split)
    assert sorted(values) == sorted(stored)
    for name, got in values.items():
        np.testing.assert_array_equal(stored[name][index], got, err_msg=name)
    return len(flat)


# ------------------------------------------------------------------ damages


def replace_dataset(name: str, value) -> Callable[[Path], None]:
    """A damage: replace (or with None delete) the dataset or group at `name` of a file;
    the value ``"group"`` puts an empty group there."""

    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            if name in f:
                del f[name]
            if isinstance(value, str) and value == "group":
                f.create_group(name)
            elif value is not None:
                f[name] = value

    return damage


def edit_dataset(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    """A damage: rewrite dataset `name` with fn(old values), same shape and dtype."""

    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            f[name][...] = fn(f[name][()])

    return damage
