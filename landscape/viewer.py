"""The interactive viewer: one standalone HTML file (plotly.js inlined, works offline).

Each surface gets a column: its name, file and settings (model, norm, seed, samples ...),
optional metrics, a 3-D surface and a top-down contour view (a line chart for a 1-D
surface). Controls above restyle every column at once from the data embedded as JSON:
split, metric (loss, accuracy, error), log scale, a z-clip slider (a percentile of the
computed values, for the huge peaks of chaotic surfaces) and camera synchronisation.
All columns share one z-range, so the surfaces compare honestly.

Text from files (labels, file names, settings) is HTML-escaped, and the embedded JSON
cannot close its ``<script>`` element, so a label holding markup shows as text.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from landscape.figures import display_names, metric_label, resolve_scale, surface_values
from landscape.fileio import atomic_write_text
from landscape.store import Surface

from .errors import InputError

__all__ = ["SETTINGS_SHOWN", "build_viewer_html", "plotly_comparison", "write_viewer"]

SETTINGS_SHOWN = ("model", "norm", "ignore", "seed", "samples", "dataset", "source")

# A path: (alpha, beta) arrays, drawn on the contour view; keyed by its label.
Paths = Mapping[str, tuple[Sequence[float], Sequence[float]]]


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


def _surface_paths(paths: Paths | Sequence[Paths | None] | None, k: int) -> list[dict]:
    if paths is None:
        return []
    chosen = paths if isinstance(paths, Mapping) else paths[k]
    out = []
    for label, (a, b) in (chosen or {}).items():
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise InputError(f"path {label!r}: alpha and beta must be 1-D of one length")
        out.append({"label": str(label), "alpha": _jsonable(a), "beta": _jsonable(b)})
    return out


def _payload(surface: Surface, name: str, paths: list[dict]) -> dict:
    values = {}
    for key, v in sorted(surface.values.items()):
        # plotly wants z[row = beta][column = alpha]; ours is [alpha, beta].
        values[key] = _jsonable(v.T if surface.is_2d else v)
    origin = [int(np.argmin(np.abs(surface.alpha)))]
    if surface.is_2d:
        origin.append(int(np.argmin(np.abs(surface.beta))))
    return {
        "name": name,
        "alpha": _jsonable(surface.alpha),
        "beta": _jsonable(surface.beta) if surface.is_2d else None,
        "values": values,
        "origin": origin,
        "paths": paths,
    }


def _table(rows: list[tuple[str, str]], cls: str) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    return str(v)


def _column(k: int, surface: Surface, name: str, metrics: Mapping[str, Any] | None) -> str:
    cfg = surface.config
    rows = [(key, _fmt(cfg[key])) for key in SETTINGS_SHOWN if cfg.get(key) is not None]
    grid = " × ".join(str(n) for n in surface.shape)
    rows.append(("grid", f"{grid}, α {surface.alpha.min():g}…{surface.alpha.max():g}"))
    if surface.is_2d:
        rows[-1] = (rows[-1][0], rows[-1][1] + f", β {surface.beta.min():g}…{surface.beta.max():g}")
    done = surface.computed
    rows.append(("computed", f"{int(done.sum())} / {done.size} points"))
    scores = _lookup(metrics, surface, name) or {}
    metric_rows = [(str(key), _fmt(v)) for key, v in scores.items()]
    file = surface.path.name if surface.path is not None else ""
    plots = (
        f'<div class="plot" id="s{k}-3d"></div><div class="plot" id="s{k}-contour"></div>'
        if surface.is_2d
        else f'<div class="plot" id="s{k}-line"></div>'
    )
    return (
        f'<section class="surface" id="s{k}">'
        f"<h2>{html.escape(name)}</h2>"
        f'<div class="file" title="{html.escape(str(surface.path or ""))}">'
        f"{html.escape(file)}</div>"
        f"{_table(rows, 'settings')}{_table(metric_rows, 'metrics')}"
        f'<div class="msg" id="s{k}-msg"></div>{plots}</section>'
    )


def build_viewer_html(
    surfaces: Sequence[Surface],
    *,
    names: Sequence[str] | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    paths: Paths | Sequence[Paths | None] | None = None,
    title: str = "Loss landscapes",
) -> str:
    """The viewer page for `surfaces`, as one self-contained HTML string.

    Args:
        surfaces: surfaces to show side by side (1-D ones as line charts).
        names: column titles; default the surfaces' labels (file name added where they repeat).
        metrics: optional table ``{name or label or file name: {metric: value}}`` shown
            beside the matching surface (e.g. from landscape.metrics).
        paths: optional 2-D paths drawn on the contour views, ``{label: (alpha, beta)}``:
            one mapping for every surface, or a sequence with one mapping (or None) each.
        title: page title.
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
    data = {
        "splits": splits or ["train"],
        "metrics": ["loss", "accuracy", "error"] if has_acc else ["loss"],
        "surfaces": [
            _payload(s, n, _surface_paths(paths, k) if s.is_2d else [])
            for k, (s, n) in enumerate(zip(surfaces, names, strict=True))
        ],
    }
    options = {
        "split": "".join(f"<option>{html.escape(sp)}</option>" for sp in data["splits"]),
        "metric": "".join(f"<option>{m}</option>" for m in data["metrics"]),
    }
    n_1d = sum(not s.is_2d for s in surfaces)
    overlay = '<div class="plot wide" id="overlay-1d"></div>' if n_1d > 1 else ""
    columns = "".join(
        _column(k, s, n, metrics) for k, (s, n) in enumerate(zip(surfaces, names, strict=True))
    )
    return _PAGE.format(
        title=html.escape(title),
        css=_CSS,
        error_hook=_ERROR_HOOK,
        plotlyjs=get_plotlyjs(),
        split_options=options["split"],
        metric_options=options["metric"],
        overlay=overlay,
        sync=(
            '<label><input type="checkbox" id="sync" checked> sync cameras</label>'
            if len(surfaces) > n_1d
            else ""
        ),
        columns=columns,
        data=_script_json(data),
        script=_SCRIPT,
    )


def write_viewer(out: str | os.PathLike, surfaces: Sequence[Surface], **kwargs: Any) -> Path:
    """Write `build_viewer_html(surfaces, **kwargs)` to `out` (UTF-8); returns the path."""
    out = Path(out)
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
    The colour and z range is `landscape.figures.resolve_scale` over all surfaces: values
    are clamped to it, and drawn as log10 on a log scale (as `plot_surface3d`). Points not
    computed yet are gaps.

    Args:
        surfaces: 2-D surfaces, one panel each.
        split, metric: the values drawn (metric: loss | accuracy | error | a stored name).
        names: panel titles; default the surfaces' labels (as `display_names`).
        log: log scale; None decides from the data (see `resolve_scale`).
        height: figure height in pixels.
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
        subplot_titles=[html.escape(n) for n in names],
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
                name=html.escape(names[k]),
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


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="landscape">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script>{error_hook}</script>
<script>{plotlyjs}</script>
</head>
<body>
<header>
<h1>{title}</h1>
<div id="controls">
<label>split <select id="split">{split_options}</select></label>
<label>metric <select id="metric">{metric_options}</select></label>
<label><input type="checkbox" id="log"> log scale</label>
<label>clip z at <input type="range" id="clip" min="50" max="100" step="0.5" value="100">
<span id="clip-value">no clip</span></label>
{sync}
</div>
<div id="status"></div>
<div id="error" hidden></div>
</header>
{overlay}
<main id="surfaces">{columns}</main>
<script type="application/json" id="landscape-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 1em; color: #222; }
h1 { font-size: 1.3em; margin: 0.6em 0 0.3em; }
h2 { font-size: 1.1em; margin: 0.2em 0; overflow-wrap: anywhere; }
#controls { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: center; }
#controls input[type=range] { vertical-align: middle; width: 10em; }
#status, .msg { color: #a15c00; margin: 0.3em 0; }
#error { background: #fdd; border: 1px solid #c00; padding: 0.5em; margin: 0.5em 0; }
#surfaces { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr));
            gap: 1em; }
.surface { min-width: 0; border-top: 2px solid #ddd; padding-top: 0.4em; }
.file { color: #666; font-size: 0.85em; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.3em 0; display: inline-table;
        vertical-align: top; margin-right: 1em; }
th { text-align: left; font-weight: 600; padding-right: 0.8em; }
.plot { width: 100%; height: 420px; }
.plot.wide { height: 380px; }
"""

# Registered first, so any later failure shows on the page (and tests can read it).
_ERROR_HOOK = """
window.addEventListener("error", function (e) {
  var msg = String(e.message || e);
  document.documentElement.setAttribute("data-error", msg);
  var el = document.getElementById("error");
  if (el) { el.hidden = false; el.textContent = "The viewer failed: " + msg; }
});
"""

_SCRIPT = """
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("landscape-data").textContent);
  var S = D.surfaces;
  var CFG = {displaylogo: false, responsive: true};
  var el = function (id) { return document.getElementById(id); };
  var state = {split: D.splits[0], metric: D.metrics[0], log: false, clip: 100};
  var updating = [];  // 3-D plots being moved by the camera sync (their events are ignored)
  var renders = 0;

  // Plotly renders a little markup in strings: escape text from files.
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function fmt(v) { return v === null ? "not computed" : Number(v).toPrecision(5); }
  function map2(a, f) {
    return a.map(function (r) { return Array.isArray(r) ? r.map(f) : f(r); });
  }
  function flat(a) {
    var out = [];
    a.forEach(function (r) {
      if (Array.isArray(r)) { out.push.apply(out, r); } else { out.push(r); }
    });
    return out;
  }
  function raw(s, split, metric) {
    if (metric === "error") {
      var acc = s.values[split + "_accuracy"];
      return acc ? map2(acc, function (v) { return v === null ? null : 1 - v; }) : null;
    }
    return s.values[split + "_" + metric] || null;
  }
  // Hover: alpha, beta and every stored value at the point (built once per surface).
  S.forEach(function (s) {
    var keys = Object.keys(s.values).sort();
    function text(a, b, get) {
      var t = "α = " + a.toPrecision(4) + (b === null ? "" : "<br>β = " + b.toPrecision(4));
      keys.forEach(function (k) { t += "<br>" + esc(k.replace("_", " ")) + " = " + fmt(get(k)); });
      return t;
    }
    s.hover = s.beta === null
      ? s.alpha.map(function (a, i) {
          return text(a, null, function (k) { return s.values[k][i]; });
        })
      : s.beta.map(function (b, j) {
          return s.alpha.map(function (a, i) {
            return text(a, b, function (k) { return s.values[k][j][i]; });
          });
        });
  });
  function sortedValues() {
    var all = [];
    S.forEach(function (s) {
      var r = raw(s, state.split, state.metric);
      if (r) flat(r).forEach(function (v) {
        if (v !== null && isFinite(v) && (!state.log || v > 0)) all.push(v);
      });
    });
    return all.sort(function (a, b) { return a - b; });
  }
  function quantile(v, q) {
    var pos = (v.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
  }
  function sync3d(src) {
    src.on("plotly_relayout", function (ev) {
      var moved = Object.keys(ev).some(function (k) { return k.indexOf("scene.camera") === 0; });
      if (!moved || !el("sync").checked || updating.indexOf(src) >= 0) return;
      var cam = JSON.parse(JSON.stringify(src.layout.scene.camera));
      S.forEach(function (s, i) {
        var d = el("s" + i + "-3d");
        if (!d || d === src || !d.data) return;
        updating.push(d);
        Plotly.relayout(d, {"scene.camera": cam}).then(function () {
          updating.splice(updating.indexOf(d), 1);
        });
      });
    });
  }
  function draw3d(i, s, z, zr, title) {
    var d = el("s" + i + "-3d");
    var traces = [{type: "surface", x: s.alpha, y: s.beta, z: z, text: s.hover,
      hovertemplate: "%{text}<extra></extra>", cmin: zr[0], cmax: zr[1],
      colorscale: "Viridis", showscale: false}];
    var z0 = z[s.origin[1]][s.origin[0]];
    if (z0 !== null) traces.push({type: "scatter3d", mode: "markers", x: [0], y: [0], z: [z0],
      marker: {symbol: "diamond", size: 5, color: "red"}, hovertemplate: "θ*<extra></extra>"});
    var fresh = !d.data;
    Plotly.react(d, traces, {margin: {l: 0, r: 0, t: 0, b: 0}, showlegend: false,
      uirevision: "keep", scene: {aspectmode: "cube", xaxis: {title: {text: "α"}},
        yaxis: {title: {text: "β"}}, zaxis: {title: {text: title}, range: zr}}}, CFG);
    if (fresh) sync3d(d);
  }
  // Contour spacing: a round step (1, 2, 2.5 or 5 times a power of ten), ~15 levels.
  function niceStep(span) {
    var raw = span / 15, p = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 2.5, 5, 10].map(function (m) { return m * p; })
      .filter(function (v) { return v >= raw; })[0];
  }
  function drawContour(i, s, z, zr, title) {
    var step = niceStep(zr[1] - zr[0]);
    var traces = [{type: "contour", x: s.alpha, y: s.beta, z: z, text: s.hover,
      hovertemplate: "%{text}<extra></extra>", zmin: zr[0], zmax: zr[1], zauto: false,
      autocontour: false, colorscale: "Viridis", line: {width: 0.5}, connectgaps: false,
      contours: {start: Math.ceil(zr[0] / step) * step, end: zr[1], size: step,
        showlabels: true, labelfont: {size: 9, color: "white"}},
      colorbar: {title: {text: title, side: "right"}, thickness: 12}},
      {type: "scatter", mode: "markers", x: [0], y: [0], name: "θ*",
        marker: {symbol: "star", size: 14, color: "red", line: {color: "white", width: 1}},
        hovertemplate: "θ* (the trained model)<extra></extra>"}];
    s.paths.forEach(function (p) {
      traces.push({type: "scatter", mode: "lines+markers", x: p.alpha, y: p.beta,
        name: esc(p.label), marker: {size: 4}, line: {width: 2}});
    });
    Plotly.react(el("s" + i + "-contour"), traces, {margin: {l: 50, r: 10, t: 10, b: 40},
      uirevision: "keep", showlegend: s.paths.length > 0, legend: {orientation: "h", y: -0.2},
      xaxis: {title: {text: "α"}}, yaxis: {title: {text: "β"}}}, CFG);
  }
  function lineLayout(lo, hi, title) {
    var pad = 0.03 * (hi - lo || 1);
    var range = state.log ? [Math.log10(lo) - 0.05, Math.log10(hi) + 0.05] : [lo - pad, hi + pad];
    return {margin: {l: 60, r: 10, t: 10, b: 40}, uirevision: "keep",
      xaxis: {title: {text: "α"}}, yaxis: {title: {text: title}, type: state.log ? "log" : "linear",
        range: range}, shapes: [{type: "line", x0: 0, x1: 0, yref: "paper", y0: 0, y1: 1,
        line: {dash: "dot", color: "grey", width: 1}}], legend: {orientation: "h", y: -0.2}};
  }
  function render() {
    var vals = sortedValues();
    var what = state.split + " " + state.metric;
    el("status").textContent = vals.length ? "" : "No computed " + what + " values to show.";
    var lo = vals[0], hi = vals.length ? quantile(vals, state.clip / 100) : 1;
    el("clip-value").textContent = state.clip >= 100 ? "no clip"
      : "p" + state.clip + " = " + Number(hi).toPrecision(4);
    var tf = state.log ? Math.log10 : function (v) { return v; };
    var zr = [tf(lo), tf(hi)];
    if (!(zr[1] > zr[0])) zr = [zr[0] - 0.5, zr[0] + 0.5];
    var title = esc((state.log ? "log10 " : "") + what);
    var lines = [];
    S.forEach(function (s, i) {
      var r = raw(s, state.split, state.metric);
      var ids = s.beta === null ? ["-line"] : ["-3d", "-contour"];
      el("s" + i + "-msg").textContent = r ? "" : "This file has no " + what + " values.";
      ids.forEach(function (suffix) { el("s" + i + suffix).style.display = r ? "" : "none"; });
      if (!r || !vals.length) return;
      if (s.beta === null) {
        var y = r.map(function (v) { return v === null ? null : Math.min(v, hi); });
        var tr = {type: "scatter", mode: "lines+markers", x: s.alpha, y: y, text: s.hover,
          name: esc(s.name), hovertemplate: "%{text}<extra></extra>", marker: {size: 4}};
        lines.push(tr);
        Plotly.react(el("s" + i + "-line"), [tr], lineLayout(lo, hi, title), CFG);
        return;
      }
      var z = map2(r, function (v) {
        return v === null || (state.log && v <= 0) ? null : tf(Math.min(v, hi));
      });
      draw3d(i, s, z, zr, title);
      drawContour(i, s, z, zr, title);
    });
    if (el("overlay-1d") && vals.length) {
      Plotly.react(el("overlay-1d"), lines, lineLayout(lo, hi, title), CFG);
    }
    document.body.setAttribute("data-renders", String(++renders));
  }
  function control(id, event, key, read) {
    el(id).addEventListener(event, function (e) { state[key] = read(e.target); render(); });
  }
  control("split", "change", "split", function (t) { return t.value; });
  control("metric", "change", "metric", function (t) { return t.value; });
  control("log", "change", "log", function (t) { return t.checked; });
  control("clip", "input", "clip", function (t) { return Number(t.value); });
  render();
  document.body.setAttribute("data-ready", "1");
})();
"""
