"""The Hessian result file of ``landscape hessian --ckpt``: the spectrum at theta* as JSON.

``{"format": "landscape-hessian", "format_version": 1, "top_eigenvalues": [...],
"lambda_max", "lambda_min", "ratio", "trace", "trace_stderr", "parameters",
"lanczos": {"largest": {...}, "smallest": {...}}, "config", "data", "provenance"}``;
NaN is written as null (strict JSON).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from landscape.core.files import write_json

__all__ = ["HESSIAN_FORMAT", "write_hessian_result"]

HESSIAN_FORMAT = "landscape-hessian"


# What is stored of a `LanczosResult` and a `HessianSpectrum` (io defines no analysis types).
class LanczosRun(Protocol):
    eigenvalues: np.ndarray
    residuals: np.ndarray
    iterations: int
    converged: bool


class Spectrum(Protocol):
    top_eigenvalues: np.ndarray
    lambda_min: float
    trace: float
    trace_stderr: float
    parameters: int
    largest: LanczosRun
    smallest: LanczosRun

    @property
    def lambda_max(self) -> float: ...

    @property
    def ratio(self) -> float: ...


def _lanczos(res: LanczosRun) -> dict[str, Any]:
    return {
        "iterations": res.iterations,
        "converged": res.converged,
        "ritz_values": res.eigenvalues,
        "residuals": res.residuals,
    }


def write_hessian_result(
    path: str | os.PathLike,
    spectrum: Spectrum,
    *,
    config: Mapping[str, Any],
    data: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> Path:
    """Write a `HessianSpectrum` as a Hessian result file, atomically.

    Args:
        path: the file to write (``.json``); an existing one is replaced.
        spectrum: the result of `hessian_spectrum`.
        config: the settings it was computed with.
        data: what the data were (`DataTensors.info`).
        provenance: versions, device and input checksums.

    Returns:
        The path written.
    """
    doc = {
        "format": HESSIAN_FORMAT,
        "format_version": 1,
        "top_eigenvalues": spectrum.top_eigenvalues,
        "lambda_max": spectrum.lambda_max,
        "lambda_min": spectrum.lambda_min,
        "ratio": spectrum.ratio,
        "trace": spectrum.trace,
        "trace_stderr": spectrum.trace_stderr,
        "parameters": spectrum.parameters,
        "lanczos": {"largest": _lanczos(spectrum.largest), "smallest": _lanczos(spectrum.smallest)},
        "config": dict(config),
        "data": dict(data),
        "provenance": dict(provenance),
    }
    path = Path(path)
    write_json(path, doc)
    return path
