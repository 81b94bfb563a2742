"""The responses file: layer-response stds and gradient norms as JSON (He et al. 2015, Fig. 7).

``{"format": "landscape-responses", "format_version": 1, "meta": {...}, "series": [...]}``,
one entry per `ResponseSeries`; written by ``landscape responses`` and `write_responses`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from landscape.core.errors import InputError
from landscape.core.files import atomic_write_text

__all__ = [
    "RESPONSES_FORMAT",
    "RESPONSE_KINDS",
    "ResponseSeries",
    "read_responses",
    "write_responses",
]

RESPONSES_FORMAT = "landscape-responses"
RESPONSE_KINDS = ("response_std", "gradient_norm")


@dataclass(frozen=True)
class ResponseSeries:
    """One curve of Fig. 7: a value per layer for one network at one stage of training.

    Args:
        label: the network's name, e.g. ``"plain20"``.
        kind: ``"response_std"`` or ``"gradient_norm"``.
        layers: the layers' names, in network order.
        values: one value per layer.
        stage: when it was measured, e.g. ``"init"`` or ``"trained"``.
        attrs: settings stored with it (JSON-ready).
    """

    label: str
    kind: str
    layers: list[str]
    values: list[float]
    stage: str = "trained"
    attrs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pairs(
        cls, label: str, kind: str, pairs: Sequence[tuple[str, float]], **kwargs: Any
    ) -> ResponseSeries:
        """Build from the ``[(name, value), ...]`` of `layer_response_std` / `gradient_norms`."""
        if kind not in RESPONSE_KINDS:
            raise InputError(f"kind must be one of {RESPONSE_KINDS}, got {kind!r}")
        return cls(label, kind, [n for n, _ in pairs], [float(v) for _, v in pairs], **kwargs)


def write_responses(
    path: str | os.PathLike,
    series: Sequence[ResponseSeries],
    *,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write series to a responses file (JSON), atomically: a kill leaves the old file or
    the whole new one.

    Args:
        path: the file to write (``.json``); an existing one is replaced.
        series: the curves, e.g. `ResponseSeries.from_pairs` of `layer_response_std`.
        meta: settings and provenance stored beside them (JSON-ready).

    Returns:
        The path written.
    """
    doc = {
        "format": RESPONSES_FORMAT,
        "format_version": 1,
        "meta": dict(meta or {}),
        "series": [asdict(s) for s in series],
    }
    path = Path(path)
    atomic_write_text(path, json.dumps(doc, indent=1))
    return path


def read_responses(path: str | os.PathLike) -> list[ResponseSeries]:
    """Read the series of a responses file.

    Args:
        path: a file of ``landscape responses`` or `write_responses`.

    Returns:
        The series, in the order written.

    Raises:
        InputError: the file is missing or not a responses file.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read responses file {str(path)!r} ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != RESPONSES_FORMAT:
        raise InputError(f"{str(path)!r} is not a {RESPONSES_FORMAT} file")
    return [ResponseSeries(**s) for s in doc["series"]]
