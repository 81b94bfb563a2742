"""Result files of ``landscape hessian --density``, ``--per-block`` and ``--sharpness`` (JSON).

Density (``"format": "landscape-spectral-density"``): per probe the Lanczos ``nodes`` and
quadrature ``weights`` (so the density can be redrawn at any smoothing), ``v^T H v``,
``|v|^2`` and each node's residual bound; the trace with its standard error and 95%
interval; the extreme nodes; the settings, data, provenance and compute time.

Per block (``"landscape-hessian-blocks"``): per group its top eigenvalue with the Lanczos
residual bound, its trace with the standard error over probes, and its parameter names.

Sharpness (``"landscape-sharpness"``): the value, its standard errors (over batches of m
samples, over perturbations), the per-batch values and the settings. NaN is null.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landscape.core.errors import InputError
from landscape.core.files import write_json

__all__ = [
    "DENSITY_FORMAT",
    "BLOCKS_FORMAT",
    "SHARPNESS_FORMAT",
    "write_density",
    "write_block_curvature",
    "write_sharpness",
    "read_curvature_result",
]

DENSITY_FORMAT = "landscape-spectral-density"
BLOCKS_FORMAT = "landscape-hessian-blocks"
SHARPNESS_FORMAT = "landscape-sharpness"


def _write(
    path: str | os.PathLike,
    fmt: str,
    body: Mapping[str, Any],
    *,
    label: str,
    config: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    provenance: Mapping[str, Any] | None,
) -> Path:
    """The result file: its format, `body`, and what every result records beside it."""
    doc = {
        "format": fmt,
        "format_version": 1,
        **body,
        "label": label,
        "config": dict(config or {}),
        "data": dict(data or {}),
        "provenance": dict(provenance or {}),
    }
    path = Path(path)
    write_json(path, doc)
    return path


def write_density(
    path: str | os.PathLike,
    density: Any,
    *,
    label: str = "",
    config: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write a `SpectralDensity` (``landscape.spectral_density``) as a density file.

    Args:
        path: the file to write (``.json``); an existing one is replaced.
        density: the `SpectralDensity`.
        label: the network's name in figures.
        config, data, provenance: the settings, the data subset (`DataTensors.info`), and
            versions and input checksums.

    Returns:
        The path written.
    """
    r = density.slq
    lo, hi = r.trace_interval()
    body = {
        "probe": r.probe,
        "depth": r.depth,
        "dimension": r.dimension,
        "samples": density.samples,
        "seconds": density.seconds,
        "trace": r.trace,
        "trace_stderr": r.trace_stderr,
        "trace_interval95": [lo, hi],
        "lambda_min_node": r.lambda_min,
        "lambda_max_node": r.lambda_max,
        "probes": [
            {"nodes": n, "weights": w, "quad_form": q, "norm2": v, "residuals": res}
            for n, w, q, v, res in zip(
                r.nodes, r.weights, r.quad_forms, r.norms2, r.residuals, strict=True
            )
        ],
        "convergence": r.convergence(),
        "parameters": list(density.parameters),
    }
    return _write(
        path, DENSITY_FORMAT, body, label=label, config=config, data=data, provenance=provenance
    )


def write_block_curvature(
    path: str | os.PathLike,
    blocks: Sequence[Any],
    *,
    label: str = "",
    seconds: float = float("nan"),
    config: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write `per_block_curvature`'s list of `BlockCurvature` as a per-block file.

    Args:
        path: the file to write (``.json``); an existing one is replaced.
        blocks: the `BlockCurvature` list; seconds: its compute time.
        label: the network's name in figures.
        config, data, provenance: the settings, the data subset (`DataTensors.info`), and
            versions and input checksums.

    Returns:
        The path written.
    """
    body = {"blocks": [b.as_dict() for b in blocks], "seconds": seconds}
    return _write(
        path, BLOCKS_FORMAT, body, label=label, config=config, data=data, provenance=provenance
    )


def write_sharpness(
    path: str | os.PathLike,
    result: Any,
    *,
    label: str = "",
    config: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write a `SharpnessResult` as a sharpness file.

    Args:
        path: the file to write (``.json``); an existing one is replaced.
        result: the `SharpnessResult`.
        label: the network's name in figures.
        config, data, provenance: the settings, the data subset (`DataTensors.info`), and
            versions and input checksums.

    Returns:
        The path written.
    """
    return _write(
        path,
        SHARPNESS_FORMAT,
        result.as_dict(),
        label=label,
        config=config,
        data=data,
        provenance=provenance,
    )


def read_curvature_result(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Read a density, per-block or sharpness file as a dict (nodes and weights as arrays).

    Args:
        path: the file.
        kind: ``"density"``, ``"blocks"`` or ``"sharpness"`` to insist on one kind.

    Returns:
        The file's content; ``label`` defaults to the file's name.

    Raises:
        InputError: the file is missing, damaged, or of another kind.
    """
    formats = {"density": DENSITY_FORMAT, "blocks": BLOCKS_FORMAT, "sharpness": SHARPNESS_FORMAT}
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read {str(path)!r} ({e})") from e
    wanted = [formats[kind]] if kind else list(formats.values())
    if not isinstance(doc, dict) or doc.get("format") not in wanted:
        raise InputError(f"{str(path)!r} is not a {' or '.join(wanted)} file")
    if doc["format"] == DENSITY_FORMAT:
        try:
            for p in doc["probes"]:
                p["nodes"] = np.asarray(p["nodes"], dtype=np.float64)
                p["weights"] = np.asarray(p["weights"], dtype=np.float64)
                if p["nodes"].shape != p["weights"].shape or p["nodes"].ndim != 1:
                    raise ValueError("nodes and weights differ in shape")
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{str(path)!r}: damaged probes ({e})") from e
    doc.setdefault("label", path.stem)
    if not doc["label"]:
        doc["label"] = path.stem
    return doc
