// Owns the dashboard page served at `GET /` of the admin server: one self-contained HTML document
// (inline CSS and JS, no external resources, no build step) that follows `/events` (one status
// snapshot per second, server-sent events) and shows, per pool, every backend's state, weight,
// in-flight requests, req/s and p50 / p99 latency (estimated from histogram deltas between
// snapshots), with a hand-drawn SVG chart of total req/s and p99 over the last 5 minutes. With a
// token, the page is opened as /?token=... and passes it on to /events (EventSource cannot set
// headers).
//
// The page's script uses no template literals, so that this module can hold it in one String.raw.

export const DASHBOARD_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>corelb dashboard</title>
<style>
  :root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; --card: #ffffff;
          --up: #15803d; --slow: #b45309; --drain: #1d4ed8; --down: #b91c1c; --rps: #2563eb; --p99: #dc2626; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 24px; flex-wrap: wrap; padding: 14px 24px; background: #111827; color: #f9fafb; }
  header h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
  header .fact { color: #d1d5db; }
  header .fact b { color: #fff; font-weight: 600; }
  #conn { margin-left: auto; font-size: 13px; }
  #conn.live::before { content: "\25CF  "; color: #4ade80; }
  #conn.lost::before { content: "\25CF  "; color: #f87171; }
  main { padding: 18px 24px; max-width: 1200px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin-bottom: 18px; }
  h2 { margin: 0 0 10px; font-size: 16px; }
  h2 small { font-weight: normal; color: var(--muted); margin-left: 8px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; table-layout: fixed; }
  col.url { width: 21%; } col.st { width: 10%; } col.n { width: 8%; } col.w { width: 9%; } col.s { width: 6%; }
  th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .4px; white-space: normal; vertical-align: bottom; }
  th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
  tr:last-child td { border-bottom: none; }
  .state { display: inline-block; min-width: 78px; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; text-align: center; }
  .state.up { background: var(--up); } .state.slow-start { background: var(--slow); }
  .state.draining { background: var(--drain); } .state.down { background: var(--down); }
  .muted { color: var(--muted); }
  .legend { display: flex; gap: 18px; font-size: 13px; margin-bottom: 4px; }
  .legend span::before { content: ""; display: inline-block; width: 14px; height: 3px; margin-right: 6px; vertical-align: middle; background: currentColor; }
  .legend .rps { color: var(--rps); } .legend .p99 { color: var(--p99); }
  .legend b { color: var(--fg); font-weight: 600; }
  svg { width: 100%; height: auto; display: block; }
  svg text { font-size: 11px; fill: var(--muted); }
  svg .grid { stroke: var(--line); stroke-width: 1; }
  svg .series { fill: none; stroke-width: 2; stroke-linejoin: round; }
  footer { color: var(--muted); font-size: 12px; padding: 0 24px 24px; }
  footer a { color: inherit; }
</style>
</head>
<body>
<header>
  <h1>corelb</h1>
  <span class="fact">req/s <b id="total-rps">-</b></span>
  <span class="fact">p99 <b id="total-p99">-</b></span>
  <span class="fact">workers <b id="workers">-</b></span>
  <span class="fact">generation <b id="generation">-</b></span>
  <span class="fact">uptime <b id="uptime">-</b></span>
  <span class="fact">CPU <b id="cpu">-</b></span>
  <span class="fact">RSS <b id="rss">-</b></span>
  <span class="fact">last reload <b id="reload">-</b></span>
  <span class="fact" id="cache-fact" hidden>cache hit ratio <b id="cache-hit">-</b> <small id="cache-size"></small></span>
  <span id="conn" class="lost">connecting</span>
</header>
<main>
  <section>
    <h2>Traffic <small>all pools, up to the last 5 minutes</small></h2>
    <div class="legend"><span class="rps">requests / s <b id="legend-rps">-</b></span><span class="p99">p99 latency <b id="legend-p99">-</b></span></div>
    <svg id="chart" viewBox="0 0 960 240" role="img" aria-label="requests per second and p99 latency over the last 5 minutes">
      <g id="chart-grid"></g>
      <path id="chart-rps" class="series" stroke="#2563eb" d="M0 0"></path>
      <path id="chart-p99" class="series" stroke="#dc2626" d="M0 0"></path>
    </svg>
  </section>
  <div id="pools"></div>
</main>
<footer>corelb admin &middot; <a href="metrics">/metrics</a> (Prometheus) &middot; <a href="status">/status</a> (JSON) &middot; updates every second from /events; req/s over the last second, p50 / p99 over the last 5 seconds, estimated from the response-time histogram</footer>
<script>
(function () {
  "use strict";
  var WINDOW_S = 300;      // longest chart span
  var QUANTILE_S = 5;      // p50 / p99 of the backends table: over this many seconds
  var X0 = 56, X1 = 904, Y0 = 16, Y1 = 208; // plot area in the SVG's viewBox
  var token = new URLSearchParams(location.search).get("token");
  var snapshots = [];      // the last QUANTILE_S + 1 snapshots
  var history = [];        // { t, rps, p99 } per snapshot, WINDOW_S long
  var bounds = [];         // histogram bucket upper bounds, seconds (+Inf last)

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function sum(a) { var s = 0; for (var i = 0; i < a.length; i++) s += a[i]; return s; }
  function answered(b) { var s = 0; for (var k in b.requests) s += b.requests[k]; return s; }
  function fmtRate(v) { return v === null ? "-" : v === 0 ? "0" : v >= 100 ? v.toFixed(0) : v.toFixed(1); }
  function fmtSeconds(s) {
    if (s === null) return "-";
    if (s === Infinity) return "> " + fmtSeconds(bounds[bounds.length - 2]);
    if (s < 0.001) return (s * 1000).toFixed(2) + " ms";
    if (s < 0.1) return (s * 1000).toFixed(1) + " ms";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    return s.toFixed(2) + " s";
  }
  function fmtBytes(b) { return b >= 1073741824 ? (b / 1073741824).toFixed(2) + " GiB" : (b / 1048576).toFixed(0) + " MiB"; }
  function fmtUptime(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = Math.floor(s % 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + sec + "s";
  }

  /** Quantile q of histogram counts (non-cumulative, per bound), interpolated inside its bucket. */
  function quantile(counts, q) {
    var total = sum(counts);
    if (total === 0) return null;
    var rank = q * total, seen = 0;
    for (var k = 0; k < counts.length; k++) {
      if (counts[k] === 0) continue;
      if (seen + counts[k] >= rank) {
        if (k === counts.length - 1) return Infinity;
        var lo = k === 0 ? 0 : bounds[k - 1], hi = bounds[k];
        return lo + (hi - lo) * (rank - seen) / counts[k];
      }
      seen += counts[k];
    }
    return Infinity;
  }
  function minus(a, b) { var out = []; for (var i = 0; i < a.length; i++) out.push(Math.max(0, a[i] - (b ? b[i] : 0))); return out; }

  /** Backends by pool and URL in a snapshot. */
  function index(s) {
    var m = {};
    s.pools.forEach(function (p) { p.backends.forEach(function (b) { m[p.name + " " + b.url] = b; }); });
    return m;
  }

  function onSnapshot(s) {
    bounds = s.latencyBucketsSeconds.concat([Infinity]);
    snapshots.push(s);
    if (snapshots.length > QUANTILE_S + 1) snapshots.shift();
    var prev = snapshots.length > 1 ? snapshots[snapshots.length - 2] : null;
    var old = snapshots[0] !== s ? snapshots[0] : null;
    var prevIdx = prev ? index(prev) : {}, oldIdx = old ? index(old) : {};
    var dt = prev ? (s.time - prev.time) / 1000 : 0, dtOld = old ? (s.time - old.time) / 1000 : 0;

    var totalRate = 0, totalHist = null;
    var rows = [];
    s.pools.forEach(function (p) {
      p.backends.forEach(function (b) {
        var key = p.name + " " + b.url, a = prevIdx[key], o = oldIdx[key];
        var rate = a && dt > 0 ? Math.max(0, answered(b) - answered(a)) / dt : null;
        var lastHist = a ? minus(b.latency.buckets, a.latency.buckets) : null;
        var winHist = o && dtOld > 0 ? minus(b.latency.buckets, o.latency.buckets) : null;
        if (rate !== null) totalRate += rate;
        if (lastHist) totalHist = totalHist ? totalHist.map(function (v, i) { return v + lastHist[i]; }) : lastHist;
        rows.push({ pool: p.name, b: b, rate: rate, p50: winHist ? quantile(winHist, 0.5) : null, p99: winHist ? quantile(winHist, 0.99) : null });
      });
    });
    var totalP99 = totalHist ? quantile(totalHist, 0.99) : null;
    if (prev) history.push({ t: s.time, rps: totalRate, p99: totalP99 === Infinity ? bounds[bounds.length - 2] : totalP99 });
    while (history.length && history[0].t < s.time - WINDOW_S * 1000) history.shift();

    $("total-rps").textContent = prev ? fmtRate(totalRate) : "-";
    $("legend-rps").textContent = prev ? fmtRate(totalRate) : "-";
    $("total-p99").textContent = fmtSeconds(totalP99);
    $("legend-p99").textContent = fmtSeconds(totalP99);
    $("workers").textContent = String(s.workers.length);
    $("generation").textContent = String(s.generation);
    $("uptime").textContent = fmtUptime(s.uptimeSeconds);
    $("rss").textContent = fmtBytes(s.process.residentBytes);
    $("cpu").textContent = prev && dt > 0 ? ((s.process.cpuSeconds - prev.process.cpuSeconds) / dt * 100).toFixed(0) + " %" : "-";
    var r = s.lastReload;
    $("reload").textContent = r === null ? "none" : (r.ok ? "ok" : "rejected") + " at " + new Date(r.at).toLocaleTimeString();
    var c = s.cache;
    $("cache-fact").hidden = !c;
    if (c) {
      $("cache-hit").textContent = c.hitRatio === null ? "-" : (c.hitRatio * 100).toFixed(1) + " %";
      $("cache-size").textContent = c.entries + " entries, " + fmtBytes(c.bytes) + " of " + fmtBytes(c.sizeBytes);
    }
    renderPools(s, rows);
    renderChart(s.time);
  }

  function renderPools(s, rows) {
    var root = $("pools");
    root.textContent = "";
    s.pools.forEach(function (p) {
      var sec = el("section", { "data-pool": p.name });
      var h = el("h2", null, p.name);
      h.appendChild(el("small", null, p.algorithm + " \u00B7 " + p.backends.length + " backend" + (p.backends.length === 1 ? "" : "s") +
        (p.events.no_backend ? " \u00B7 " + p.events.no_backend + " answered 503 (no backend)" : "")));
      sec.appendChild(h);
      var table = el("table");
      var cols = table.appendChild(el("colgroup"));
      ["url", "st", "n", "n", "n", "n", "n", "w", "s", "s", "n"].forEach(function (c) { cols.appendChild(el("col", { "class": c })); });
      var head = el("tr");
      ["backend", "state", "weight", "in flight", "req/s", "p50", "p99", "2xx", "4xx", "5xx", "failures"].forEach(function (c) { head.appendChild(el("th", null, c)); });
      table.appendChild(el("thead")).appendChild(head);
      var body = el("tbody");
      rows.filter(function (row) { return row.pool === p.name; }).forEach(function (row) {
        var b = row.b, tr = el("tr", { "data-backend": b.url });
        tr.appendChild(el("td", { title: b.url }, b.url));
        var st = el("td");
        st.appendChild(el("span", { "class": "state " + b.state }, b.state));
        tr.appendChild(st);
        var w = b.effectiveWeight === b.weight ? String(b.weight) : (Math.round(b.effectiveWeight * 100) / 100) + " / " + b.weight;
        tr.appendChild(el("td", null, w));
        tr.appendChild(el("td", null, String(b.inflight)));
        tr.appendChild(el("td", null, fmtRate(row.rate)));
        tr.appendChild(el("td", null, fmtSeconds(row.p50)));
        tr.appendChild(el("td", null, fmtSeconds(row.p99)));
        tr.appendChild(el("td", null, String(b.requests["2xx"])));
        tr.appendChild(el("td", null, String(b.requests["4xx"])));
        tr.appendChild(el("td", null, String(b.requests["5xx"])));
        var f = 0; for (var k in b.failures) f += b.failures[k];
        tr.appendChild(el("td", f ? null : { "class": "muted" }, String(f)));
        body.appendChild(tr);
      });
      table.appendChild(body);
      sec.appendChild(table);
      root.appendChild(sec);
    });
  }

  /** A round axis maximum at or above v: 1, 2, 5 x 10^n. */
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  /** Seconds shown: from 30 s at start, growing in 30 s steps to WINDOW_S as history fills. */
  function span(now) {
    var have = history.length ? (now - history[0].t) / 1000 : 0;
    return Math.min(WINDOW_S, Math.max(30, Math.ceil(have / 30) * 30));
  }
  function fmtAgo(sec) {
    if (sec === 0) return "now";
    if (sec < 60) return "-" + sec + " s";
    return sec % 60 === 0 ? "-" + sec / 60 + " min" : "-" + Math.floor(sec / 60) + ":" + ("0" + sec % 60).slice(-2) + " min";
  }

  function renderChart(now) {
    var spanS = span(now);
    var maxRps = niceMax(Math.max.apply(null, history.map(function (h) { return h.rps; }).concat([0])) * 1.05);
    var maxP99 = niceMax(Math.max.apply(null, history.map(function (h) { return h.p99 || 0; }).concat([0])) * 1.05);
    function x(t) { return X1 - (now - t) / (spanS * 1000) * (X1 - X0); }
    function path(get, max) {
      var d = "", pen = false;
      history.forEach(function (h) {
        var v = get(h);
        if (v === null || v === undefined) { pen = false; return; }
        var px = x(h.t), py = Y1 - Math.min(1, v / max) * (Y1 - Y0);
        d += (pen ? "L" : "M") + px.toFixed(1) + " " + py.toFixed(1);
        pen = true;
      });
      return d || "M0 0";
    }
    $("chart-rps").setAttribute("d", path(function (h) { return h.rps; }, maxRps));
    $("chart-p99").setAttribute("d", path(function (h) { return h.p99; }, maxP99));
    var g = $("chart-grid");
    g.textContent = "";
    for (var k = 0; k <= 4; k++) {
      var y = Y1 - k / 4 * (Y1 - Y0);
      g.appendChild(svg("line", { "class": "grid", x1: X0, x2: X1, y1: y, y2: y }));
      g.appendChild(svg("text", { x: X0 - 6, y: y + 4, "text-anchor": "end", fill: "#2563eb" }, fmtRate(maxRps * k / 4)));
      g.appendChild(svg("text", { x: X1 + 6, y: y + 4, "text-anchor": "start", fill: "#dc2626" }, k === 0 ? "0" : fmtSeconds(maxP99 * k / 4)));
    }
    for (var m = 0; m <= 5; m++) {
      var tx = X0 + m / 5 * (X1 - X0);
      g.appendChild(svg("line", { "class": "grid", x1: tx, x2: tx, y1: Y0, y2: Y1 }));
      g.appendChild(svg("text", { x: tx, y: Y1 + 18, "text-anchor": "middle" }, fmtAgo(Math.round(spanS * (5 - m) / 5))));
    }
  }

  function connect() {
    var src = new EventSource("events" + (token ? "?token=" + encodeURIComponent(token) : ""));
    src.onopen = function () { $("conn").className = "live"; $("conn").textContent = "live"; };
    src.onerror = function () { $("conn").className = "lost"; $("conn").textContent = "reconnecting"; };
    src.onmessage = function (ev) {
      $("conn").className = "live";
      $("conn").textContent = "live";
      try { onSnapshot(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    };
  }
  renderChart(Date.now());
  connect();
})();
</script>
</body>
</html>
`;
