"""The interactive viewer: one standalone HTML file (plotly.js inlined, works offline).

Each surface gets a column: its name, file and settings (model, norm, seed, samples ...),
optional metrics, a 3-D surface and a top-down contour view; 1-D surfaces share one line
chart. Controls above restyle every column at once from the data embedded as JSON:
split, metric (loss, accuracy, error), linear or log scale, contour levels (the rule of
`landscape.viz.levels`, so they are the static figures' lines), the figure style, a
z-clip slider (a percentile of the computed values, for the huge peaks of chaotic
surfaces) and camera synchronisation. All columns share one z-range, so the surfaces
compare honestly. Below them: the difference of two surfaces (A - B or log10 A / B) and
profiles along alpha and beta through the point hovered or clicked. With ``live`` the
page polls `viewer_data` and redraws while ``landscape compute`` fills the files
(``landscape view --live``, served by `landscape.viz.live`).

Text from files (labels, file names, settings) is HTML-escaped, and the embedded JSON
cannot close its ``<script>`` element, so a label holding markup shows as text.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from matplotlib import colormaps
from matplotlib.colors import to_hex
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from landscape.analysis.metrics import surface_metrics
from landscape.core.errors import InputError
from landscape.core.files import atomic_write_text
from landscape.io.surface_file import Surface
from landscape.io.surfaces import stored_paths, stored_points, surface_values
from landscape.surface.grid import axis_levels, grid_origin
from landscape.viz.levels import page_rule, resolve_scale
from landscape.viz.style import DIVERGING, STYLES, display_names, metric_label

__all__ = [
    "SETTINGS_SHOWN",
    "build_viewer_html",
    "metrics_by_name",
    "plotly_comparison",
    "viewer_data",
    "write_viewer",
]

SETTINGS_SHOWN = ("model", "norm", "ignore", "seed", "samples", "dataset", "source")

# A path: (alpha, beta) arrays, drawn on the contour view; keyed by its label.
Paths = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def _asset(name: str) -> str:
    """A file of the page: HTML, CSS and JavaScript live as files under viewer_assets/.

    The error hook (error_hook.js) is registered first, so any later failure shows on
    the page (and tests can read it).
    """
    return (resources.files("landscape.viz") / "viewer_assets" / name).read_text("utf-8")


def _jsonable(a: np.ndarray) -> list:
    """Nested lists with null where the value is not computed (NaN) or not finite."""
    a = np.asarray(a, dtype=np.float64)
    obj = a.astype(object)
    obj[~np.isfinite(a)] = None
    return obj.tolist()


def _script_json(payload: Any) -> str:
    """JSON safe inside a <script> element: no "<", ">" or "&" can end it early."""
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _lookup(table: Mapping[str, Any] | None, surface: Surface, name: str) -> Any:
    if not table:
        return None
    keys = [name, surface.label]
    if surface.path is not None:
        keys += [str(surface.path), surface.path.name, surface.path.stem]
    return next((table[k] for k in keys if k in table), None)


def _surface_paths(
    paths: Paths | Sequence[Paths | None] | None, k: int, surface: Surface
) -> list[dict]:
    """The paths drawn on surface `k`: those its file records (`stored_paths`), then the
    caller's (one of a label replaces the file's)."""
    chosen = paths if paths is None or isinstance(paths, Mapping) else paths[k]
    out = []
    for label, (a, b) in {**stored_paths(surface), **(chosen or {})}.items():
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise InputError(f"path {label!r}: alpha and beta must be 1-D of one length")
        out.append({"label": str(label), "alpha": _jsonable(a), "beta": _jsonable(b)})
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    return str(v)


def _settings(surface: Surface) -> list[list[str]]:
    cfg = surface.config
    rows = [[key, _fmt(cfg[key])] for key in SETTINGS_SHOWN if cfg.get(key) is not None]
    grid = " × ".join(str(n) for n in surface.shape)
    span = f"{grid}, α {surface.alpha.min():g}…{surface.alpha.max():g}"
    if surface.is_2d:
        span += f", β {surface.beta.min():g}…{surface.beta.max():g}"
    rows.append(["grid", span])
    if surface.interpolated is not None:
        evaluated = int(surface.evaluated.sum())
        rows.append(
            [
                "adaptive",
                f"{evaluated} of {surface.interpolated.size} points evaluated, the rest "
                f"interpolated within {_fmt(surface.tolerance)}",
            ]
        )
    return rows


def _surface_data(
    surface: Surface, name: str, paths: list[dict], scores: Mapping[str, Any] | None
) -> dict:
    values = {}
    for key, v in sorted(surface.values.items()):
        # plotly wants z[row = beta][column = alpha]; ours is [alpha, beta].
        values[key] = _jsonable(v.T if surface.is_2d else v)
    origin = [int(np.argmin(np.abs(surface.alpha)))]
    if surface.is_2d:
        origin.append(int(np.argmin(np.abs(surface.beta))))
    done = surface.computed
    # Each axis's coarse-to-fine levels (landscape.surface.grid.axis_levels): the page
    # draws a partly computed grid's finest complete sub-grid, as the figures do.
    levels = axis_levels(done.shape, grid_origin(surface.alpha, surface.beta))
    return {
        "name": name,
        "file": surface.path.name if surface.path is not None else "",
        "alpha": _jsonable(surface.alpha),
        "beta": _jsonable(surface.beta) if surface.is_2d else None,
        "values": values,
        "origin": origin,
        "paths": paths,
        "points": [
            {"label": label, "alpha": a, "beta": b}
            for label, (a, b) in (stored_points(surface) if surface.is_2d else {}).items()
        ],
        "done": int(done.sum()),
        "total": int(done.size),
        "grid_levels": [lv.tolist() for lv in levels],
        "settings": _settings(surface),
        "scores": [[str(k), _fmt(v)] for k, v in (scores or {}).items()],
        # Adaptive refinement: 1 where the values are predictions (the hover says so).
        "interpolated": (
            None
            if surface.interpolated is None
            else (surface.interpolated.T if surface.is_2d else surface.interpolated)
            .astype(int)
            .tolist()
        ),
        "tolerance": surface.tolerance,
    }


def _colorscale(name: str, n: int = 11) -> list[list]:
    """A matplotlib colour map as a Plotly colour scale, so both draw the same colours."""
    rgba = colormaps[name](np.linspace(0.0, 1.0, n))
    return [[float(t), to_hex(c)] for t, c in zip(np.linspace(0.0, 1.0, n), rgba, strict=True)]


def viewer_data(
    surfaces: Sequence[Surface],
    *,
    names: Sequence[str] | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    paths: Paths | Sequence[Paths | None] | None = None,
) -> dict:
    """Everything the page draws, as JSON-ready values: the embedded data of a static page
    and the body of a live page's ``data.json``.

    Args:
        surfaces, names, metrics, paths: as in `build_viewer_html`.

    Returns:
        A dict of plain lists, numbers and strings (``json.dumps`` takes it).
    """
    if not surfaces:
        raise InputError("the viewer needs at least one surface")
    names = list(names) if names is not None else display_names(surfaces)
    if len(names) != len(surfaces):
        raise InputError(f"{len(surfaces)} surfaces need as many names, got {len(names)}")
    if paths is not None and not isinstance(paths, Mapping) and len(paths) != len(surfaces):
        raise InputError(f"paths: give one mapping, or one per surface ({len(surfaces)})")
    splits = sorted({sp for s in surfaces for sp in s.splits}, key=lambda sp: (sp != "train", sp))
    has_acc = any(k.endswith("_accuracy") for s in surfaces for k in s.values)
    cmaps = {c for style in STYLES.values() for c in (style.cmap, style.cmap3d)}
    return {
        "splits": splits or ["train"],
        "metrics": ["loss", "accuracy", "error"] if has_acc else ["loss"],
        "surfaces": [
            _surface_data(
                s, n, _surface_paths(paths, k, s) if s.is_2d else [], _lookup(metrics, s, n)
            )
            for k, (s, n) in enumerate(zip(surfaces, names, strict=True))
        ],
        # The level rule of `resolve_scale`, so the page's contours match `landscape plot`.
        "levels": page_rule(),
        "styles": {name: asdict(style) for name, style in STYLES.items()},
        "colorscales": {c: _colorscale(c) for c in sorted({*cmaps, DIVERGING})},
        "diverging": DIVERGING,
        "live": None,
    }


def build_viewer_html(
    surfaces: Sequence[Surface],
    *,
    names: Sequence[str] | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    paths: Paths | Sequence[Paths | None] | None = None,
    title: str = "Loss landscapes",
    live: Mapping[str, Any] | None = None,
) -> str:
    """The viewer page for `surfaces`, as one self-contained HTML string.

    Args:
        surfaces: one to four surfaces are laid out best (1-D ones join one line chart).
        names: titles; default the surfaces' labels (file name added where they repeat).
        metrics: optional table ``{name or label or file name: {metric: value}}`` shown
            in the settings table (e.g. from landscape.metrics).
        paths: optional 2-D paths drawn on the contour views, ``{label: (alpha, beta)}``:
            one mapping for every surface, or a sequence with one mapping (or None) each.
            The paths and points a file records (`landscape.io.surfaces.stored_paths`,
            ``landscape connect --plane``'s curve, line, A, B and bend) are drawn too.
        title: page title.
        live: for ``landscape view --live``: ``{"url": ..., "interval_ms": ...}``; the page
            then polls `url` for new `viewer_data` and redraws until every file is complete.
    """
    data = viewer_data(surfaces, names=names, metrics=metrics, paths=paths)
    data["live"] = dict(live) if live else None
    return _asset("page.html").format(
        title=html.escape(title),
        css=_asset("viewer.css"),
        error_hook=_asset("error_hook.js"),
        plotlyjs=get_plotlyjs(),
        data=_script_json(data),
        script=_asset("viewer.js"),
    )


def metrics_by_name(surfaces: Sequence[Surface]) -> dict[str, dict[str, float]]:
    """Each surface's metrics (its first split) by display name: the viewer's metrics column."""
    return {
        name: surface_metrics(s, split=s.splits[0] if s.splits else "train")
        for name, s in zip(display_names(surfaces), surfaces, strict=True)
    }


def write_viewer(out: str | os.PathLike, surfaces: Sequence[Surface], **kwargs: Any) -> Path:
    """Write the viewer page of `surfaces` to `out` (UTF-8, atomically).

    Args:
        out: the page to write (``.html``); an existing one is replaced.
        surfaces: the surfaces, one column each.
        **kwargs: `names`, `metrics`, `paths`, `title` as in `build_viewer_html`; without
            `metrics`, each surface's metrics (`metrics_by_name`), as ``landscape view``
            shows them (``metrics={}`` for none).

    Returns:
        The path written.
    """
    out = Path(out)
    if kwargs.get("metrics") is None:
        kwargs["metrics"] = metrics_by_name(surfaces)
    atomic_write_text(out, build_viewer_html(surfaces, **kwargs))
    return out


def plotly_comparison(
    surfaces: Sequence[Surface],
    *,
    split: str = "train",
    metric: str = "loss",
    names: Sequence[str] | None = None,
    log: bool | None = None,
    height: int = 420,
) -> go.Figure:
    """2-D surfaces as interactive 3-D plots side by side, on one shared scale.

    A light figure for notebooks (``fig.show()``); `build_viewer_html` is the full page.
    The colour and z range is `landscape.viz.levels.resolve_scale` over all surfaces: values
    are clamped to it, and drawn as log10 on a log scale (as `plot_surface3d`). Points not
    computed yet are gaps.

    Args:
        surfaces: 2-D surfaces, one panel each.
        split, metric: the values drawn (metric: loss | accuracy | error | a stored name).
        names: panel titles; default the surfaces' labels (as `display_names`).
        log: log scale; None decides from the data (see `resolve_scale`).
        height: figure height in pixels.

    Returns:
        A Plotly figure (``fig.show()`` in a notebook).
    """
    if not surfaces:
        raise InputError("plotly_comparison needs at least one surface")
    flat = [s.label for s in surfaces if not s.is_2d]
    if flat:
        raise InputError(f"surface {flat[0]!r} is 1-D; plotly_comparison draws 2-D surfaces")
    names = list(names) if names is not None else display_names(surfaces)
    if len(names) != len(surfaces):
        raise InputError(f"{len(surfaces)} surfaces need as many names, got {len(names)}")
    arrays = [surface_values(s, split, metric) for s in surfaces]
    scale = resolve_scale(arrays, log=log)
    lo, hi = scale.vmin, scale.vmax
    if scale.log:
        lo, hi = float(np.log10(lo)), float(np.log10(hi))
    fig = make_subplots(
        rows=1,
        cols=len(surfaces),
        specs=[[{"type": "scene"}] * len(surfaces)],
        # Plotly draws a subset of HTML in text: markup escaped (its entities are &amp; &lt;
        # &gt; and numeric ones, not &quot;, so quotes stay as they are).
        subplot_titles=[html.escape(n, quote=False) for n in names],
        horizontal_spacing=0.02,
    )
    for k, (s, z) in enumerate(zip(surfaces, arrays, strict=True)):
        if scale.log:
            z = np.log10(np.clip(np.where(z > 0, z, np.nan), scale.vmin, scale.vmax))
        else:
            z = np.clip(z, scale.vmin, scale.vmax)
        fig.add_trace(
            go.Surface(
                x=s.alpha,
                y=s.beta,
                z=z.T,  # plotly wants z[row = beta][column = alpha]
                cmin=lo,
                cmax=hi,
                colorscale="Viridis",
                showscale=k == 0,
                name=html.escape(names[k], quote=False),
            ),
            row=1,
            col=k + 1,
        )
    fig.update_scenes(
        xaxis_title="α",
        yaxis_title="β",
        zaxis_title=metric_label(split, metric, log=scale.log),
        zaxis_range=[lo, hi],
    )
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 40, "b": 0})
    return fig
