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
    // A value's standard error over the samples (format version 2) is shown beside it.
    var keys = Object.keys(s.values).sort().filter(function (k) { return !/_se$/.test(k); });
    function text(a, b, get) {
      var t = "α = " + a.toPrecision(4) + (b === null ? "" : "<br>β = " + b.toPrecision(4));
      keys.forEach(function (k) {
        t += "<br>" + esc(k.replace("_", " ")) + " = " + fmt(get(k));
        if (s.values[k + "_se"] !== undefined) { t += " ± " + fmt(get(k + "_se")); }
      });
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
