(function () {
  "use strict";
  var el = function (id) { return document.getElementById(id); };
  var D = JSON.parse(el("landscape-data").textContent);
  var CFG = {displaylogo: false, responsive: true};
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
  var state = {split: D.splits[0], metric: D.metrics[0], scale: "auto", levels: "auto",
    nlevels: D.levels.count, style: "default", clip: 100, fixed: null, diffA: 0, diffB: 1,
    diffMode: "diff"};
  var updating = [];  // 3-D plots being moved by the camera sync (their events are ignored)
  var renders = 0;
  var current = null;  // what the last render drew: the scale, the 2-D surfaces, their values

  // Plotly draws a subset of HTML in its text (names, titles, legends): text from a file
  // (labels, split names) goes through esc, so its markup shows as text.
  function esc(t) {
    return String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // ------------------------------------------------------------------ values and scales
  function fmt(v) { return v === null || v === undefined ? "not computed" : Number(v).toPrecision(5); }
  function surfaces2d() { return D.surfaces.filter(function (s) { return s.beta !== null; }); }
  function surfaces1d() { return D.surfaces.filter(function (s) { return s.beta === null; }); }
  function map2(a, f) {
    return a.map(function (r) { return Array.isArray(r) ? r.map(f) : f(r); });
  }
  function flat(a) {
    var out = [];
    a.forEach(function (r) { if (Array.isArray(r)) out.push.apply(out, r); else out.push(r); });
    return out;
  }
  // The values of split + metric ("error" is 1 - accuracy); null when the file has none.
  function raw(s, split, metric) {
    if (metric === "error") {
      var acc = s.values[split + "_accuracy"];
      return acc ? map2(acc, function (v) { return v === null ? null : 1 - v; }) : null;
    }
    return s.values[split + "_" + metric] || null;
  }
  function stderr(s, split, metric) {
    var m = metric === "error" ? "accuracy" : metric;
    return s.values[split + "_" + m + "_se"] || null;
  }
  function quantile(v, q) {
    var pos = (v.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
  }
  function linspace(a, b, n) {
    var out = [];
    for (var k = 0; k < n; k++) out.push(n === 1 ? a : a + (b - a) * k / (n - 1));
    return out;
  }
  function geomspace(a, b, n) {
    return linspace(Math.log10(a), Math.log10(b), n).map(function (e) { return Math.pow(10, e); });
  }
  // Round-numbered levels, the rule of landscape.viz.figures._nice_levels (kept equal by a
  // test): 1-2-5 per decade on a log scale, a 1/2/2.5/5 step giving ~15 levels on a linear one.
  function niceLevels(vmin, vmax, log) {
    var out = [], k;
    if (log) {
      var lo = Math.floor(Math.log10(vmin)), hi = Math.ceil(Math.log10(vmax));
      var decades = Math.log10(vmax / vmin), subs = D.levels.log_subs;
      subs = decades <= 2 ? subs[0] : decades <= 4 ? subs[1] : subs[2];
      for (var d = lo; d <= hi; d++) {
        subs.forEach(function (m) {
          var v = Number((m * Math.pow(10, d)).toPrecision(12));
          if (v >= vmin * (1 - 1e-9) && v <= vmax * (1 + 1e-9)) out.push(v);
        });
      }
      return out.length >= 4 ? out : geomspace(vmin, vmax, 8);
    }
    var rawStep = (vmax - vmin) / D.levels.count;
    var p = Math.pow(10, Math.floor(Math.log10(rawStep)));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * p; })
      .filter(function (v) { return v >= rawStep * (1 - 1e-12); })[0];
    for (k = Math.ceil(vmin / step - 1e-9); k <= Math.floor(vmax / step + 1e-9); k++) {
      out.push(Number((k * step).toPrecision(12)));
    }
    return out.length >= 4 ? out : linspace(vmin, vmax, 8);
  }
  // The scale of landscape.viz.figures.resolve_scale: the value range, log or linear, and
  // the contour levels, over every array given. opts: {log: null|bool, levels: "auto" |
  // a preset name | a count, vmin, vmax (null: the data's)}.
  function resolveScale(arrays, opts) {
    var all = [];
    arrays.forEach(function (a) {
      flat(a).forEach(function (v) { if (v !== null && isFinite(v)) all.push(v); });
    });
    if (!all.length) return null;
    all.sort(function (a, b) { return a - b; });
    var log = opts.log, preset = D.levels.presets[opts.levels];
    if (preset && log === null) log = false;
    if (log === null) {
      var lo = all[0], hi = all[all.length - 1];
      var median = quantile(all, 0.5);
      var basin = hi > lo ? niceLevels(lo, hi, false).filter(function (L) {
        return L < median;
      }).length : 0;
      log = lo > 0 && hi > lo && (median < lo + D.levels.skew * (hi - lo) || hi >= 100 * lo ||
        basin < D.levels.basin);
    }
    if (log) all = all.filter(function (v) { return v > 0; });
    if (!all.length) return null;
    var vmin = opts.vmin === null || opts.vmin === undefined ? all[0] : opts.vmin;
    var vmax = opts.vmax === null || opts.vmax === undefined ? all[all.length - 1] : opts.vmax;
    if (vmin === vmax) {
      if (log) { vmin /= 2; vmax *= 2; } else { vmin -= 0.5; vmax += 0.5; }
    }
    var levels;
    if (preset) levels = preset.slice();
    else if (typeof opts.levels === "number") {
      levels = log ? geomspace(vmin, vmax, opts.levels) : linspace(vmin, vmax, opts.levels);
    } else levels = niceLevels(vmin, vmax, log);
    return {vmin: vmin, vmax: vmax, log: log, levels: levels, sorted: all};
  }
  window.landscapeScale = resolveScale;  // for tests: the page's rule against Python's

  function rgbOf(hex) {  // "#rrggbb" -> [r, g, b]
    var c = parseInt(hex.slice(1), 16);
    return [(c >> 16) & 255, (c >> 8) & 255, c & 255];
  }
  // Colour of a value on a colour scale ([[t, "#rrggbb"], ...]), t in [0, 1].
  function colorAt(scale, t) {
    t = Math.max(0, Math.min(1, t));
    for (var k = 1; k < scale.length; k++) {
      if (t <= scale[k][0]) {
        var a = scale[k - 1], b = scale[k], f = (t - a[0]) / ((b[0] - a[0]) || 1);
        var ca = rgbOf(a[1]), cb = rgbOf(b[1]);
        var mix = [0, 1, 2].map(function (c) { return Math.round(ca[c] * (1 - f) + cb[c] * f); });
        return "rgb(" + mix.join(",") + ")";
      }
    }
    return scale[scale.length - 1][1];
  }

  // ------------------------------------------------------------------ building the page
  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text;
    sel.appendChild(o);
  }
  function panel(row, id, cls, s, i) {
    var div = document.createElement("div");
    div.className = "panel";
    var h = document.createElement("h2");
    h.textContent = s.name;
    h.style.color = COLORS[i % COLORS.length];
    var file = document.createElement("div");
    file.className = "file"; file.textContent = s.file;
    var msg = document.createElement("div");
    msg.className = "msg"; msg.id = id + "-msg";
    var plot = document.createElement("div");
    plot.className = "plot " + cls; plot.id = id;
    div.appendChild(h); div.appendChild(file); div.appendChild(msg); div.appendChild(plot);
    el(row).appendChild(div);
  }
  function build() {
    D.splits.forEach(function (sp) { option(el("split"), sp, sp); });
    D.metrics.forEach(function (m) { option(el("metric"), m, m); });
    Object.keys(D.levels.presets).forEach(function (p) {
      var v = D.levels.presets[p];
      option(el("levels"), p, p + " (" + v[0] + "…" + v[v.length - 1] + ")");
    });
    Object.keys(D.styles).forEach(function (st) { option(el("style"), st, st); });
    el("nlevels").value = state.nlevels;
    var two = surfaces2d();
    D.surfaces.forEach(function (s, i) {
      if (s.beta === null) return;
      panel("row-3d", "s" + i + "-3d", "p3d", s, i);
      panel("row-contour", "s" + i + "-contour", "pc", s, i);
    });
    if (!two.length) {
      ["row-3d", "row-contour", "profiles-a", "profiles-b", "sync-label"].forEach(function (id) {
        el(id).hidden = true;
      });
    }
    el("overlay").hidden = !surfaces1d().length;
    var pairs = comparable();
    if (pairs.length) {
      el("diff").hidden = false;
      two.forEach(function (s) {
        var i = D.surfaces.indexOf(s);
        option(el("diff-a"), i, s.name); option(el("diff-b"), i, s.name);
      });
      state.diffA = pairs[0][0]; state.diffB = pairs[0][1];
      el("diff-a").value = state.diffA; el("diff-b").value = state.diffB;
    }
  }
  // Pairs of 2-D surfaces on one grid (a difference is defined point by point).
  function sameGrid(a, b) {
    return JSON.stringify([a.alpha, a.beta]) === JSON.stringify([b.alpha, b.beta]);
  }
  function comparable() {
    var out = [];
    D.surfaces.forEach(function (a, i) {
      D.surfaces.forEach(function (b, j) {
        if (i < j && a.beta !== null && b.beta !== null && sameGrid(a, b)) out.push([i, j]);
      });
    });
    return out;
  }
  function buildTable() {
    var rows = [["file", {}], ["computed", {}]], seen = {file: 0, computed: 1};
    D.surfaces.forEach(function (s, i) {
      rows[0][1][i] = s.file;
      rows[1][1][i] = s.done + " / " + s.total + " points";
      s.settings.concat(s.scores).forEach(function (kv) {
        if (!(kv[0] in seen)) { seen[kv[0]] = rows.length; rows.push([kv[0], {}]); }
        rows[seen[kv[0]]][1][i] = kv[1];
      });
    });
    var t = el("table");
    t.textContent = "";
    var head = t.createTHead().insertRow();
    head.appendChild(document.createElement("th"));
    D.surfaces.forEach(function (s, i) {
      var th = document.createElement("th");
      th.textContent = s.name; th.style.color = COLORS[i % COLORS.length];
      head.appendChild(th);
    });
    var body = t.createTBody();
    rows.forEach(function (r) {
      var tr = body.insertRow(), th = document.createElement("th");
      th.textContent = r[0];
      tr.appendChild(th);
      var vals = D.surfaces.map(function (s, i) { return i in r[1] ? r[1][i] : "—"; });
      if (D.surfaces.length > 1 && r[0] !== "file" &&
          vals.some(function (v) { return v !== vals[0]; })) tr.className = "differs";
      vals.forEach(function (v) { tr.insertCell().textContent = v; });
    });
  }
  function showStatus() {
    var parts = [], live = D.live;
    D.surfaces.forEach(function (s) {
      if (s.done >= s.total && !live) return;
      var t = s.name + ": " + s.done + " / " + s.total + " points";
      if (s.done < s.total && typeof s.eta_s === "number") t += ", about " + duration(s.eta_s) + " left";
      parts.push(t);
    });
    if (live) parts.push(live.complete ? "complete: no more updates" : "live, updating every " +
      (live.interval_ms / 1000) + " s");
    el("status").textContent = parts.join(" · ");
    var done = D.surfaces.reduce(function (n, s) { return n + s.done; }, 0);
    document.body.setAttribute("data-points", String(done));
  }
  function duration(s) {
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  // ------------------------------------------------------------------ drawing
  function style() { return D.styles[state.style]; }
  function currentScale() {
    var st = style(), arrays = [];
    D.surfaces.forEach(function (s) {
      var r = raw(s, state.split, state.metric);
      if (r) arrays.push(r);
    });
    var lv = state.levels === "count" ? state.nlevels : state.levels;
    var log = state.scale === "auto" ? null : state.scale === "log";
    var sc = resolveScale(arrays, {log: log, levels: lv, vmin: st.vmin, vmax: st.vmax});
    if (sc && st.vmax === null && state.clip < 100) {  // the clip slider: a percentile
      sc = resolveScale(arrays, {log: sc.log, levels: lv, vmin: st.vmin,
        vmax: quantile(sc.sorted, state.clip / 100)});
    }
    return sc;
  }
  function nearest(axis, v) {
    var best = 0;
    axis.forEach(function (a, k) { if (Math.abs(a - v) < Math.abs(axis[best] - v)) best = k; });
    return best;
  }
  function sync3d(src) {
    src.on("plotly_relayout", function (ev) {
      var moved = Object.keys(ev).some(function (k) { return k.indexOf("scene.camera") === 0; });
      if (!moved || !el("sync").checked || updating.indexOf(src) >= 0) return;
      var cam = JSON.parse(JSON.stringify(src.layout.scene.camera));
      D.surfaces.forEach(function (s, i) {
        var d = el("s" + i + "-3d");
        if (!d || d === src || !d.data) return;
        updating.push(d);
        Plotly.relayout(d, {"scene.camera": cam}).then(function () {
          updating.splice(updating.indexOf(d), 1);
        });
      });
    });
  }
  function linkEvents(div) {
    div.on("plotly_hover", function (ev) { hover(ev.points[0].x, ev.points[0].y); });
    div.on("plotly_unhover", function () { el("readout").hidden = true; crosshair(null); });
    div.on("plotly_click", function (ev) {
      state.fixed = {alpha: ev.points[0].x, beta: ev.points[0].y};
      render();
    });
  }
  // What a partly computed grid can draw: `compute` fills θ* and the corners first, then
  // ever finer sub-grids of the whole range (s.grid_levels: each axis's level of each index,
  // landscape.surface.grid.axis_levels), so the finest complete sub-grid is a coarser
  // picture of the whole, while the full grid would have too few complete cells to draw.
  // Stored values only; a grid filled in another order keeps its gaps.
  function shown(s, r) {
    var full = {x: s.alpha, y: s.beta, z: r};
    if (s.done >= s.total || !s.grid_levels) return full;
    var top = Math.max(Math.max.apply(null, s.grid_levels[0]),
      Math.max.apply(null, s.grid_levels[1]));
    for (var k = top; k >= 0; k--) {
      var ia = [], ib = [];
      s.grid_levels[0].forEach(function (lv, a) { if (lv <= k) ia.push(a); });
      s.grid_levels[1].forEach(function (lv, b) { if (lv <= k) ib.push(b); });
      if (ia.length < 2 || ib.length < 2) break;
      var whole = ib.every(function (j) { return ia.every(function (i) { return r[j][i] !== null; }); });
      if (whole) {
        return k === top ? full : {x: ia.map(function (i) { return s.alpha[i]; }),
          y: ib.map(function (j) { return s.beta[j]; }),
          z: ib.map(function (j) { return ia.map(function (i) { return r[j][i]; }); })};
      }
    }
    return full;
  }
  function draw3d(i, s, r, sc, title, last) {
    var d = el("s" + i + "-3d"), tf = sc.log ? Math.log10 : function (v) { return v; };
    var scaled = function (v) {
      return v === null || !isFinite(v) || (sc.log && v <= 0) ? null
        : tf(Math.min(Math.max(v, sc.vmin), sc.vmax));
    };
    var z = map2(r, scaled), part = shown(s, r);
    var zr = [tf(sc.vmin), tf(sc.vmax)];
    var traces = [{type: "surface", x: part.x, y: part.y, z: map2(part.z, scaled),
      cmin: zr[0], cmax: zr[1],
      colorscale: D.colorscales[style().cmap3d], showscale: last, hoverinfo: "none",
      colorbar: {title: {text: esc(title), side: "right"}, thickness: 12, len: 0.7}}];
    var marks = [[s.origin[0], s.origin[1], "diamond", "red"]];
    if (state.fixed) {
      marks.push([nearest(s.alpha, state.fixed.alpha), nearest(s.beta, state.fixed.beta),
        "circle", "black"]);
    }
    marks.forEach(function (m) {
      var v = z[m[1]][m[0]];
      if (v !== null) traces.push({type: "scatter3d", mode: "markers", x: [s.alpha[m[0]]],
        y: [s.beta[m[1]]], z: [v], hoverinfo: "none",
        marker: {symbol: m[2], size: 5, color: m[3]}});
    });
    var fresh = !d.data;
    // The camera the panel has now (turned by the user or by the sync) survives a redraw;
    // a new panel starts a little above Plotly's default eye, looking into the basin.
    var camera = fresh ? {eye: {x: 1.3, y: 1.3, z: 1.55}}
      : JSON.parse(JSON.stringify(d.layout.scene.camera));
    Plotly.react(d, traces, {margin: {l: 0, r: 0, t: 0, b: 0}, showlegend: false,
      uirevision: "keep", scene: {aspectmode: "cube", camera: camera,
        xaxis: {title: {text: "α"}},
        yaxis: {title: {text: "β"}}, zaxis: {title: {text: esc(title)}, range: zr}}}, CFG);
    if (fresh) { sync3d(d); linkEvents(d); }
  }
  // Contour lines: one trace per level, so levels need not be evenly spaced (log and preset
  // levels are not); an invisible heat map under them carries hover and click.
  function levelTraces(s, r, sc, cmap) {
    var part = shown(s, r), span = sc.log ? Math.log10(sc.vmax) - Math.log10(sc.vmin) : sc.vmax - sc.vmin;
    return sc.levels.map(function (L) {
      var t = ((sc.log ? Math.log10(L) - Math.log10(sc.vmin) : L - sc.vmin) / (span || 1));
      var c = colorAt(cmap, t);
      return {type: "contour", x: part.x, y: part.y, z: part.z, showscale: false,
        hoverinfo: "skip", autocontour: false, connectgaps: false,
        colorscale: [[0, c], [1, c]], line: {width: 1, color: c},
        contours: {coloring: "lines", start: L, end: L, size: 1, showlabels: true,
          labelformat: ".3~g", labelfont: {size: 9, color: c}}};
    });
  }
  function drawContour(i, s, r, sc) {
    var d = el("s" + i + "-contour");
    var traces = [{type: "heatmap", x: s.alpha, y: s.beta, z: r, opacity: 0, showscale: false,
      hoverinfo: "none"}].concat(levelTraces(s, r, sc, D.colorscales[style().cmap]));
    // The points the file records (A, B, the bend), under the star of theta*.
    (s.points || []).forEach(function (p) {
      traces.push({type: "scatter", mode: "markers+text", showlegend: false, hoverinfo: "none",
        x: [p.alpha], y: [p.beta], text: esc(p.label), textposition: "top right",
        marker: {size: 8, color: "white", line: {color: "black", width: 1.5}}});
    });
    traces.push({type: "scatter", mode: "markers", x: [0], y: [0], name: "θ*", hoverinfo: "none",
      marker: {symbol: "star", size: 14, color: "red", line: {color: "white", width: 1}}});
    s.paths.forEach(function (p) {
      traces.push({type: "scatter", mode: "lines+markers", x: p.alpha, y: p.beta,
        name: esc(p.label), hoverinfo: "none", marker: {size: 4}, line: {width: 2}});
    });
    if (state.fixed) {
      traces.push({type: "scatter", mode: "markers", x: [state.fixed.alpha],
        y: [state.fixed.beta], name: "fixed point", hoverinfo: "none",
        marker: {symbol: "circle-open", size: 12, color: "black", line: {width: 2}}});
    }
    var fresh = !d.data;
    var yaxis = {title: {text: "β"}, zeroline: false, range: [s.beta[0], s.beta[s.beta.length - 1]]};
    var spanA = s.alpha[s.alpha.length - 1] - s.alpha[0], spanB = s.beta[s.beta.length - 1] - s.beta[0];
    if (spanB / spanA >= 1 / 3 && spanB / spanA <= 3) {
      // One unit of alpha as long as one of beta: a square domain draws square, however
      // wide the panel (a lone surface's panel spans the window).
      yaxis.scaleanchor = "x";
      yaxis.scaleratio = 1;
      yaxis.constrain = "domain";
    }
    Plotly.react(d, traces, {margin: {l: 45, r: 10, t: 10, b: 40}, uirevision: "keep",
      showlegend: s.paths.length > 0, legend: {orientation: "h", y: -0.2},
      hovermode: "closest", plot_bgcolor: "white",
      xaxis: {title: {text: "α"}, zeroline: false, constrain: "domain",
        range: [s.alpha[0], s.alpha[s.alpha.length - 1]]},
      yaxis: yaxis}, CFG);
    if (fresh) linkEvents(d);
  }
  function crosshair(pt) {
    surfaces2d().forEach(function (s) {
      var d = el("s" + D.surfaces.indexOf(s) + "-contour");
      if (!d || !d.data) return;
      var shapes = pt ? [
        {type: "line", x0: pt[0], x1: pt[0], yref: "paper", y0: 0, y1: 1,
          line: {color: "#444", width: 1, dash: "dot"}},
        {type: "line", y0: pt[1], y1: pt[1], xref: "paper", x0: 0, x1: 1,
          line: {color: "#444", width: 1, dash: "dot"}}] : [];
      Plotly.relayout(d, {shapes: shapes});
    });
  }
  // Linked hover: alpha, beta and every stored value at that point of every surface.
  var mouse = [0, 0];
  document.addEventListener("mousemove", function (e) { mouse = [e.clientX, e.clientY]; });
  function hover(a, b) {
    var box = el("readout");
    box.textContent = "";
    var head = document.createElement("div");
    head.textContent = "α = " + Number(a).toPrecision(4) +
      (b === undefined || b === null ? "" : ", β = " + Number(b).toPrecision(4));
    box.appendChild(head);
    var t = document.createElement("table");
    D.surfaces.forEach(function (s, i) {
      var ia = nearest(s.alpha, a), ib = s.beta === null ? null : nearest(s.beta, b);
      var keys = Object.keys(s.values).sort().filter(function (k) { return !/_se$/.test(k); });
      var get = function (k) {
        var v = s.values[k];
        return ib === null ? v[ia] : v[ib][ia];
      };
      var tr = t.insertRow(), th = document.createElement("th");
      th.colSpan = 2; th.textContent = s.name; th.style.color = COLORS[i % COLORS.length];
      tr.appendChild(th);
      var flags = s.interpolated;
      if (flags && (ib === null ? flags[ia] : flags[ib][ia])) {
        var note = t.insertRow().insertCell();
        note.colSpan = 2; note.className = "interpolated";
        note.textContent = "interpolated (loss within " + String(s.tolerance) + " by design)";
      }
      keys.forEach(function (k) {
        var row = t.insertRow(), v = fmt(get(k));
        if (s.values[k + "_se"] !== undefined && get(k) !== null) v += " ± " + fmt(get(k + "_se"));
        row.insertCell().textContent = k.replace("_", " ");
        row.insertCell().textContent = v;
      });
    });
    box.appendChild(t);
    box.hidden = false;
    var w = box.offsetWidth, h = box.offsetHeight;
    var x = mouse[0] + 18 + w > window.innerWidth ? mouse[0] - 18 - w : mouse[0] + 18;
    var y = Math.min(Math.max(4, mouse[1] - h / 2), window.innerHeight - h - 4);
    box.style.left = Math.max(4, x) + "px"; box.style.top = y + "px";
    if (b !== undefined && b !== null) crosshair([a, b]);
  }
  function drawDiff() {
    if (el("diff").hidden) return;
    var A = D.surfaces[state.diffA], B = D.surfaces[state.diffB], msg = "";
    var ra = raw(A, state.split, state.metric), rb = raw(B, state.split, state.metric);
    if (!sameGrid(A, B)) msg = "these two surfaces are on different grids";
    else if (!ra || !rb) msg = "one of them has no " + state.split + " " + state.metric;
    el("diff-msg").textContent = msg;
    el("diff-plot").style.display = msg ? "none" : "";
    if (msg) return;
    var ratio = state.diffMode === "ratio", m = 0;
    var z = ra.map(function (row, j) {
      return row.map(function (va, k) {
        var vb = rb[j][k];
        if (va === null || vb === null || !isFinite(va) || !isFinite(vb)) return null;
        if (ratio && (va <= 0 || vb <= 0)) return null;
        var v = ratio ? Math.log10(va / vb) : va - vb;
        m = Math.max(m, Math.abs(v));
        return v;
      });
    });
    var what = state.split + " " + state.metric;
    var title = ratio ? "log10 " + what + " ratio" : what + " difference";
    var traces = [{type: "heatmap", x: A.alpha, y: A.beta, z: z, zmid: 0, zmin: -(m || 1),
      zmax: m || 1, colorscale: D.colorscales[D.diverging], hoverinfo: "none",
      colorbar: {title: {text: esc(title), side: "right"}, thickness: 12}},
      {type: "contour", x: A.alpha, y: A.beta, z: z, showscale: false, hoverinfo: "skip",
        colorscale: [[0, "#000"], [1, "#000"]], autocontour: false,
        contours: {coloring: "lines", start: 0, end: 0, size: 1}, line: {width: 1.5}}];
    var d = el("diff-plot"), fresh = !d.data;
    Plotly.react(d, traces, {margin: {l: 45, r: 10, t: 30, b: 40}, uirevision: "keep",
      title: {text: esc(A.name) + (ratio ? " / " : " − ") + esc(B.name) + " (black: 0)",
        font: {size: 12}},
      xaxis: {title: {text: "α"}}, yaxis: {title: {text: "β"}}}, CFG);
    if (fresh) {
      d.on("plotly_hover", function (ev) { hover(ev.points[0].x, ev.points[0].y); });
      d.on("plotly_unhover", function () { el("readout").hidden = true; crosshair(null); });
    }
  }
  // A line with a 95% band (+- 1.96 standard errors) where the file has standard errors.
  function lineTraces(x, y, se, name, color, hi) {
    var cap = function (v) { return v === null ? null : Math.min(v, hi); };
    var out = [];
    if (se) {
      var up = y.map(function (v, k) { return v === null || se[k] === null ? null : cap(v + 1.96 * se[k]); });
      var lo = y.map(function (v, k) { return v === null || se[k] === null ? null : v - 1.96 * se[k]; });
      out.push({type: "scatter", mode: "lines", x: x, y: lo, line: {width: 0}, hoverinfo: "skip",
        showlegend: false});
      out.push({type: "scatter", mode: "lines", x: x, y: up, line: {width: 0}, fill: "tonexty",
        fillcolor: color.replace("rgb", "rgba").replace(")", ",0.2)"), hoverinfo: "skip",
        showlegend: false});
    }
    out.push({type: "scatter", mode: "lines+markers", x: x, y: y.map(cap), name: esc(name),
      line: {color: color, width: 1.5}, marker: {size: 3}, hovertemplate: "%{x:.3g}: %{y:.4g}<extra>" +
        esc(name).replace(/%/g, "&#37;") + "</extra>"});
    return out;
  }
  function hexRgb(hex) { return "rgb(" + rgbOf(hex).join(",") + ")"; }
  // The value axis of line plots: it holds every drawn value (a profile's minimum may lie
  // below the shared scale's lower end) and, on a log axis, reads as whole numbers
  // ("0.2 0.5 1 2 5"), not Plotly's bare mantissas ("5 2 1 5 2").
  function lineLayout(sc, xtitle, ytitle, x0, traces) {
    var ys = [];
    (traces || []).forEach(function (t) {
      t.y.forEach(function (v) { if (v !== null && isFinite(v) && (!sc.log || v > 0)) ys.push(v); });
    });
    var lo = Math.min.apply(null, ys.concat([sc.vmax])), hi = Math.max.apply(null, ys.concat([sc.vmin]));
    lo = Math.min(lo, sc.vmin); hi = Math.min(Math.max(hi, lo), sc.vmax);
    var range = sc.log ? [Math.log10(lo) - 0.05, Math.log10(hi) + 0.05]
      : [lo - 0.03 * (hi - lo || 1), hi + 0.03 * (hi - lo || 1)];
    var yaxis = {title: {text: esc(ytitle)}, type: sc.log ? "log" : "linear", range: range};
    if (sc.log) {
      yaxis.tickformat = "~g";  // every label a whole number: 0.2, 0.5, 1, 2, 5, 10
      yaxis.dtick = Math.log10(hi / lo) > 2 ? 1 : "D2";
    }
    return {margin: {l: 55, r: 10, t: 10, b: 40}, uirevision: "keep", hovermode: "x unified",
      xaxis: {title: {text: esc(xtitle)}}, yaxis: yaxis,
      shapes: [{type: "line", x0: x0, x1: x0, yref: "paper", y0: 0, y1: 1,
        line: {dash: "dot", color: "grey", width: 1}}],
      legend: {orientation: "h", y: -0.25}};
  }
  // Profiles through the fixed point (theta* until a click), from the stored grid.
  function drawProfiles(sc, title) {
    var two = surfaces2d();
    if (!two.length) return;
    var fa = state.fixed ? state.fixed.alpha : 0, fb = state.fixed ? state.fixed.beta : 0;
    var along = {a: [], b: []};
    two.forEach(function (s) {
      var i = D.surfaces.indexOf(s), r = raw(s, state.split, state.metric);
      if (!r) return;
      var se = stderr(s, state.split, state.metric), ib = nearest(s.beta, fb);
      var ia = nearest(s.alpha, fa), color = hexRgb(COLORS[i % COLORS.length]);
      along.a = along.a.concat(lineTraces(s.alpha, r[ib], se ? se[ib] : null, s.name, color,
        sc.vmax));
      along.b = along.b.concat(lineTraces(s.beta, r.map(function (row) { return row[ia]; }),
        se ? se.map(function (row) { return row[ia]; }) : null, s.name, color, sc.vmax));
    });
    var where = state.fixed ? "" : " (through θ*; click a map to choose)";
    el("profile-alpha-title").textContent = "Along α at β = " + Number(fb).toPrecision(3) + where;
    el("profile-beta-title").textContent = "Along β at α = " + Number(fa).toPrecision(3) + where;
    Plotly.react(el("profile-alpha"), along.a, lineLayout(sc, "α", title, fa, along.a), CFG);
    Plotly.react(el("profile-beta"), along.b, lineLayout(sc, "β", title, fb, along.b), CFG);
  }
  function drawOverlay(sc, title) {
    var one = surfaces1d(), traces = [], missing = [];
    if (!one.length) return;
    one.forEach(function (s) {
      var i = D.surfaces.indexOf(s), r = raw(s, state.split, state.metric);
      if (!r) { missing.push(s.name); return; }
      traces = traces.concat(lineTraces(s.alpha, r, stderr(s, state.split, state.metric),
        s.name, hexRgb(COLORS[i % COLORS.length]), sc.vmax));
    });
    el("overlay-msg").textContent = missing.length ? missing.join(", ") + ": no " +
      state.split + " " + state.metric + " values" : "";
    Plotly.react(el("overlay-1d"), traces, lineLayout(sc, "α", title, 0), CFG);
  }
  function render() {
    var sc = currentScale(), what = state.split + " " + state.metric;
    el("clip").disabled = style().vmax !== null;
    el("clip-value").textContent = style().vmax !== null ? "style: up to " + style().vmax
      : state.clip >= 100 ? "no clip" : "p" + state.clip + " = " + (sc ? sc.vmax.toPrecision(4) : "");
    if (!sc) {
      el("status").textContent = "No computed " + what + " values to show yet.";
      document.body.setAttribute("data-renders", String(++renders));
      return;
    }
    showStatus();
    var title = (sc.log ? "log10 " : "") + what;
    var two = surfaces2d(), last = two[two.length - 1];
    two.forEach(function (s) {
      var i = D.surfaces.indexOf(s), r = raw(s, state.split, state.metric);
      el("s" + i + "-3d-msg").textContent = r ? "" : "This file has no " + what + " values.";
      ["-3d", "-contour"].forEach(function (suffix) {
        el("s" + i + suffix).style.display = r ? "" : "none";
      });
      if (!r) return;
      draw3d(i, s, r, sc, title, s === last);
      drawContour(i, s, r, sc);
    });
    drawDiff();
    drawProfiles(sc, what);
    drawOverlay(sc, what);
    current = sc;
    document.body.setAttribute("data-renders", String(++renders));
  }
  window.landscapeState = function () { return {state: state, scale: current, data: D}; };

  // ------------------------------------------------------------------ controls and live mode
  function control(id, event, key, read) {
    el(id).addEventListener(event, function (e) { state[key] = read(e.target); render(); });
  }
  control("split", "change", "split", function (t) { return t.value; });
  control("metric", "change", "metric", function (t) { return t.value; });
  control("scale", "change", "scale", function (t) { return t.value; });
  control("levels", "change", "levels", function (t) { return t.value; });
  control("clip", "input", "clip", function (t) { return Number(t.value); });
  control("diff-a", "change", "diffA", function (t) { return Number(t.value); });
  control("diff-b", "change", "diffB", function (t) { return Number(t.value); });
  control("diff-mode", "change", "diffMode", function (t) { return t.value; });
  el("nlevels").addEventListener("change", function (e) {
    var n = Math.round(Number(e.target.value));
    if (!(n >= 2 && n <= D.levels.max)) { e.target.value = state.nlevels; return; }
    state.nlevels = n; state.levels = "count"; el("levels").value = "count";
    render();
  });
  el("style").addEventListener("change", function (e) {
    state.style = e.target.value;
    var preset = style().levels;
    state.levels = preset || "auto";
    el("levels").value = state.levels;
    render();
  });
  function poll() {
    fetch(D.live.url, {cache: "no-store"}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (fresh) {
      D = fresh;
      buildTable();
      render();
      if (!D.live.complete) setTimeout(poll, D.live.interval_ms);
    }).catch(function (err) {
      // The server stopped (Ctrl-C) or a read failed: say so and keep what is shown.
      el("status").textContent = "Live updates stopped: " + err.message +
        " (the page shows the last data received).";
    });
  }
  build();
  buildTable();
  render();
  document.body.setAttribute("data-ready", "1");
  if (D.live && !D.live.complete) setTimeout(poll, D.live.interval_ms);
})();
