// Owns what run.js writes: the Markdown tables, the ratios against the goals, results/latest.{md,json,svg} and --render.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, fmt } from '../lib.js';
import { svgChart } from './chart.js';
import { ALGORITHMS, MAIN, SCENARIOS } from './scenarios.js';


/** " (low–high)" over a row's rounds, or '' for a single round. */
function roundsRange(r, field, digits) {
  const v = (r.rounds ?? []).map((x) => x[field]).filter(Number.isFinite);
  if (v.length < 2) return '';
  return ` (${fmt(Math.min(...v), digits)}–${fmt(Math.max(...v), digits)})`;
}

const COLS = [
  ['scenario', (r) => r.scenario],
  ['target', (r) => r.label],
  ['req/s', (r) => fmt(r.rps, 0) + roundsRange(r, 'rps', 0)],
  ['MiB/s', (r) => (r.mibps === undefined ? '' : fmt(r.mibps, 0))],
  ['p50 ms', (r) => fmt(r.p50, 1)],
  ['p99 ms', (r) => fmt(r.p99, 1)],
  ['CPU µs/req', (r) => fmt(r.cpuUsPerReq, 1) + roundsRange(r, 'cpuUsPerReq', 1)],
  ['origin CPU µs/req', (r) => (r.originCpuUsPerReq === null ? '-' : fmt(r.originCpuUsPerReq, 1))],
  ['peak RSS MB', (r) => fmt(r.peakRssMB, 1)],
  ['errors / non-2xx', (r) => (r.error ? `FAILED: ${r.error.split('\n')[0]}` : `${r.errors}${socketErrorKinds(r)} / ${r.non2xx}`)],
];

export /** wrk's kinds of socket errors, when there are any: " (read 123)". */
function socketErrorKinds(r) {
  const kinds = Object.entries(r.socketErrors ?? {}).filter(([, n]) => n > 0);
  return kinds.length ? ` (${kinds.map(([k, n]) => `${k} ${n}`).join(', ')})` : '';
}

function markdownTable(rows) {
  const head = `| ${COLS.map((c) => c[0]).join(' | ')} |`;
  const sep = `| ${COLS.map((c, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`;
  const body = rows.map((r) => `| ${COLS.map((c) => c[1](r)).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}

export function idleTable(rows) {
  const out = [
    '| target | connections open / asked | RSS before MB | RSS with them idle MB | KB per connection | served afterwards | p99 ms | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    if (r.error) {
      out.push(`| ${r.label} | FAILED: ${r.error.split('\n')[0]} | | | | | | |`);
      continue;
    }
    const i = r.idle;
    const perConn = i.opened > 0 ? ((r.rssHeldMB - r.rssBeforeMB) * 1024) / i.opened : NaN;
    out.push(
      `| ${r.label} | ${i.opened} / ${i.requested} | ${fmt(r.rssBeforeMB, 1)} | ${fmt(r.rssHeldMB, 1)} | ${fmt(perConn, 1)} | ` +
        `${r.requests} / ${i.opened} | ${fmt(r.p99, 1)} | ${r.errors + r.non2xx + i.openFailed} |`,
    );
  }
  return out.join('\n');
}

const x = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN);

const METRICS = [
  ['cpuUsPerReq', 'CPU µs/req'],
  ['rps', 'req/s'],
  ['p99', 'p99'],
  ['mibps', 'MiB/s'],
];

/**
 * Ratios between rows of this run. `goal`: [op, value] from the performance issue, printed beside
 * (met / not met). Returns { table (Markdown), lines (the rest), ratios (for the JSON) }.
 * Goals: on small requests (get-2B, conns-1000, new-conn) corelb workers=1 / nginx CPU per request
 * <= 1.15, req/s >= 0.90 (issue 18; stretch 1.00), p99 <= 2; req/s >= 3x each node proxy; workers=2 / workers=1 CPU per
 * request <= 1.1. On 1 MiB bodies: MiB/s >= 0.8x nginx's, RSS flat. idle-10k: < 200 MB, all served.
 */
export function computeRatios(rows, scenarios) {
  const lines = [];
  const ratios = [];
  const cells = new Map(); // "scenario|pair" -> { scenario, pair, [field]: text }
  const add = (s, pair, a, b, field, goal) => {
    if (!a || !b) return;
    const v = x(a[field], b[field]);
    if (!Number.isFinite(v)) return;
    let text = `${fmt(v, 2)}x`;
    let met = null;
    if (goal) {
      const [op, g] = goal;
      met = op === '<=' ? v <= g : v >= g;
      text += ` (goal ${op === '<=' ? '≤' : '≥'} ${g}: ${met ? 'met' : 'not met'})`;
    }
    ratios.push({ scenario: s, pair, metric: field, value: v, goal: goal ?? null, met });
    const key = `${s}|${pair}`;
    if (!cells.has(key)) cells.set(key, { scenario: s, pair });
    cells.get(key)[field] = text;
  };
  for (const s of scenarios) {
    const get = (name) => rows.find((r) => r.name === name && r.scenario === s && !r.error);
    if (s === 'algorithms') {
      const rr = get('corelb-alg-round-robin');
      for (const alg of ALGORITHMS.slice(1)) {
        add(s, `corelb ${alg} / round-robin`, get(`corelb-alg-${alg}`), rr, 'cpuUsPerReq');
        add(s, `corelb ${alg} / round-robin`, get(`corelb-alg-${alg}`), rr, 'rps');
        add(s, `corelb ${alg} / round-robin`, get(`corelb-alg-${alg}`), rr, 'p99');
      }
      continue;
    }
    if (s === 'idle-10k') {
      const w1 = get('corelb-w1');
      for (const peer of ['nginx', 'haproxy', 'node-http-proxy', 'fastify-proxy']) {
        const p = get(peer);
        if (!w1 || !p) continue;
        const v = x(w1.rssHeldMB, p.rssHeldMB);
        ratios.push({ scenario: s, pair: `corelb workers=1 / ${peer}`, metric: 'rssHeldMB', value: v, goal: null, met: null });
        lines.push(`- ${s}: RSS with the connections idle, corelb workers=1 / ${peer}: ${fmt(v, 2)}x (${fmt(w1.rssHeldMB, 1)} / ${fmt(p.rssHeldMB, 1)} MB)`);
      }
      if (w1) {
        const ok = w1.rssHeldMB < 200 && w1.requests === w1.idle.requested;
        lines.push(
          `- ${s}: corelb workers=1 held ${w1.idle.opened} connections at ${fmt(w1.rssHeldMB, 1)} MB RSS and served ${w1.requests} requests over them afterwards ` +
            `(goal: ${w1.idle.requested} under 200 MB, all served: ${ok ? 'met' : 'not met'})`,
        );
      }
      continue;
    }
    const d = get('direct');
    const w1 = get('corelb-w1');
    const w2 = get('corelb-w2');
    const big = Boolean(SCENARIOS[s].mib);
    const small = !big;
    for (const peer of ['nginx', 'haproxy']) {
      const p = get(peer);
      const g = peer === 'nginx';
      const pair = `corelb workers=1 / ${peer === 'nginx' ? 'nginx' : 'HAProxy'}`;
      add(s, pair, w1, p, 'cpuUsPerReq', g && small ? ['<=', 1.15] : undefined);
      add(s, pair, w1, p, 'rps', g && small ? ['>=', 0.9] : undefined);
      add(s, pair, w1, p, 'p99', g && small ? ['<=', 2] : undefined);
      if (big) add(s, pair, w1, p, 'mibps', g ? ['>=', 0.8] : undefined);
    }
    for (const peer of ['node-http-proxy', 'fastify-proxy']) {
      const pair = `corelb workers=1 / ${peer === 'fastify-proxy' ? '@fastify/http-proxy' : peer}`;
      add(s, pair, w1, get(peer), 'cpuUsPerReq');
      add(s, pair, w1, get(peer), 'rps', small ? ['>=', 3] : undefined);
      if (big) add(s, pair, w1, get(peer), 'mibps');
    }
    add(s, 'corelb workers=2 / workers=1', w2, w1, 'cpuUsPerReq', small ? ['<=', 1.1] : undefined);
    add(s, 'corelb workers=2 / workers=1', w2, w1, 'rps');
    // the same step for nginx on the same machine: what a second worker costs here at all
    add(s, 'nginx workers=2 / workers=1', get('nginx-w2'), get('nginx'), 'cpuUsPerReq');
    add(s, 'nginx workers=2 / workers=1', get('nginx-w2'), get('nginx'), 'rps');
    add(s, 'corelb workers=1 / origin alone', w1, d, 'cpuUsPerReq');
    add(s, 'corelb workers=1 / origin alone', w1, d, 'rps');
    for (const access of ['file', 'stdout']) {
      const pair = `corelb workers=1, access log to ${access === 'file' ? 'a file' : 'stdout'} / access log off`;
      add(s, pair, get(`corelb-w1-access-${access}`), w1, 'cpuUsPerReq');
      add(s, pair, get(`corelb-w1-access-${access}`), w1, 'rps');
    }
    if (big && w1) {
      lines.push(
        `- ${s}: corelb workers=1 RSS: ${fmt(w1.rssBeforeMB, 1)} MB before the load, ${fmt(w1.rssWindowStartMB, 1)} MB at the start of the measured window, ` +
          `${fmt(w1.rssWindowEndMB, 1)} MB at its end, peak ${fmt(w1.peakRssMB, 1)} MB (goal: flat)`,
      );
    }
  }
  const head = `| scenario | ratio | ${METRICS.map((m) => m[1]).join(' | ')} |`;
  const sep = `| --- | --- | ${METRICS.map(() => '---').join(' | ')} |`;
  const body = [...cells.values()].map((c) => `| ${c.scenario} | ${c.pair} | ${METRICS.map((m) => c[m[0]] ?? '').join(' | ')} |`);
  const table = cells.size ? [head, sep, ...body].join('\n') : '';
  return { table, lines, ratios };
}

export function upstreamTable(u) {
  if (!u) return '';
  if (u.error) return `upstream client comparison: FAILED: ${u.error}`;
  const out = [
    `| client | requests | req/s | CPU µs/request (process.cpuUsage) | errors |`,
    `| --- | ---: | ---: | ---: | ---: |`,
  ];
  for (const c of u.clients) {
    if (c.unavailable) out.push(`| ${c.client} | - | - | unavailable: ${c.unavailable} | - |`);
    else out.push(`| ${c.client} | ${c.requests} | ${fmt(c.rps, 0)} | ${fmt(c.cpuUsPerReq, 2)} | ${c.errors} |`);
  }
  const cpu = (n) => u.clients.find((c) => c.client === n && !c.unavailable)?.cpuUsPerReq;
  const r = (a, b, text) => {
    if (cpu(a) && cpu(b)) out.push(`- ${text}: ${fmt(cpu(a) / cpu(b), 2)}x`);
  };
  out.push('');
  r('corelb', 'undici', 'CPU per request, corelb upstream client / undici Pool');
  r('corelb', 'raw-floor', 'CPU per request, corelb upstream client / raw-floor (bare sockets, no parsing)');
  r('undici', 'raw-floor', 'CPU per request, undici Pool / raw-floor');
  return out.join('\n');
}


/** The Markdown report of a run (from its meta and rows alone, so --render can redo it). */
export function report(meta, rows, upstream) {
  const scenarios = meta.scenarioList;
  const conns = (s) => SCENARIOS[s].connections(meta.opts);
  const skipped = meta.skipped ?? [];
  const { table: ratioTable, lines, ratios } = computeRatios(rows, scenarios);
  const mainRows = rows.filter((r) => r.scenario !== 'idle-10k');
  const idleRows = rows.filter((r) => r.scenario === 'idle-10k');
  const notes = [
    `CPU µs/req = CPU time (utime + stime) of the target's process tree, all threads, read from /proc/PID/stat ` +
      `(fields 14 + 15, ${1e6 / meta.clkTck} µs ticks) right before and after the measured window, / responses completed in the window. ` +
      `Not the process's own accounting: every target, node or not, is read the same way. nginx = master + its one worker; corelb = supervisor + data plane (all threads); ` +
      `for "origin alone" it is the origin's. "origin CPU µs/req" = the origin's CPU per proxied request in the same window.`,
    `peak RSS = largest sum of VmRSS (/proc/PID/status) over the process tree, sampled every 100 ms over warm-up and window. Every target is started fresh for each scenario.`,
    `MiB/s = response bytes read (get-*) or request body bytes sent (post-*) / window.`,
    `Load: ${meta.loadGenerator}. pipelining ${meta.pipelining}, ${meta.warmupSec} s warm-up (wrk: whole seconds, at least 1) then ${meta.durationSec} s measured per row. ` +
      ((meta.rounds ?? 1) > 1
        ? `${meta.rounds} rounds per scenario (idle-10k: 1): every target measured once per round, the order reversed every other round; a row is the target's round with the median CPU µs/req, and (low–high) is the spread over its rounds. Ratios are between those median rows. `
        : '') +
      `Connections: ${scenarios.map((s) => `${s} ${conns(s)}`).join(', ')}.`,
    ...(meta.accessLog
      ? [
          `Access log: corelb workers=1 started three ways, the same config but \`log.access\`: false; true with \`log.file\` in the target's temp dir (ready read from the file); true on stdout, a pipe this runner drains (counting bytes, no parsing). ` +
            `"access log … MB" in the progress lines (\`accessLogBytes\` in access-log.json) = log file size / stdout bytes at the end of the window: a check that the lines were written. No peers, no upstream-client run.`,
        ]
      : [
          meta.scenarios['new-conn']?.load === 'wrk'
            ? `new-conn: wrk with \`-H 'Connection: close'\`: the proxy answers and closes, wrk reconnects; latency includes the connect. ` +
              `A proxy that closes without a \`Connection: close\` in its answer (corelb did before main f4dc327) makes wrk, which reads keep-alive from the response, write its next request into the closed connection: one read error per request, the response itself complete and counted.`
            : `new-conn: a new TCP connection per request, \`Connection: close\` sent, the client closes its side once the response is complete (like wrk); latency includes the connect.`,
          `algorithms: one origin process listening on 3 ports = 3 backends; 64 distinct paths /k/0../k/63 cycled per connection (consistent-hash with hash_key: path).`,
          `Peers: nginx and HAProxy one worker/thread, keep-alive upstream (configs in native-free-bench/peers/); node-http-proxy with a keep-alive http.Agent; @fastify/http-proxy with undici (reply-from's default). ` +
            (skipped.length ? `Skipped: ${skipped.map((s) => `${s.name}${s.scenario ? ` in ${s.scenario}` : ''} (${s.reason})`).join('; ')}.` : 'None skipped.'),
        ]),
    ...[meta.loadNote, meta.originNote].filter(Boolean).map((n) => `Note: ${n}.`),
    `${meta.cpus} CPUs shared by load generator, proxy and origin (and, on this machine, other work: see the load average): compare ratios within this run, not absolute numbers across runs.`,
  ];
  const md = [
    `# corelb ${meta.accessLog ? 'access-log ' : ''}bench — ${meta.date}`,
    '',
    `node ${meta.node}, ${meta.platform}, ${meta.cpus} x ${meta.cpuModel}, load average at start ${meta.loadavgAtStart.join(' ')}, at end ${meta.loadavgAtEnd.join(' ')}`,
    '',
    ...(meta.interrupted
      ? [
          `**Interrupted (${meta.interrupted.signal}) after ${meta.interrupted.rowsDone} of ${meta.interrupted.rowsPlanned} planned rows**: the rows measured so far; a target of the scenario that was running has only its rounds done.`,
          '',
        ]
      : []),
    markdownTable(mainRows),
    '',
    ...(idleRows.length ? [`## ${meta.opts.idleConnections} idle keep-alive connections`, '', idleTable(idleRows), ''] : []),
    '## Ratios (same run)',
    '',
    meta.accessLog
      ? "Each cell: the first target's figure over the second's (each access-log variant over access log off)."
      : "Each cell: the first target's figure over the second's; the goals of the performance issue beside them.",
    '',
    ...(ratioTable ? [ratioTable, ''] : []),
    ...(lines.length ? [...lines, ''] : []),
    ...(!ratioTable && !lines.length ? ['- (not enough successful rows)', ''] : []),
    '## Notes',
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    ...(upstream ? ['## Upstream HTTP client alone', '', upstreamTable(upstream), ''] : []),
  ].join('\n');
  return { md, ratios };
}

/** The results directory: native-free-bench/results unless --out says otherwise. */
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

export function writeResults(meta, rows, upstream, md, ratios, json, resultsDir = RESULTS_DIR) {
  const shown = path.relative(process.cwd(), resultsDir) || '.';
  mkdirSync(resultsDir, { recursive: true });
  if (meta.accessLog) {
    // its own files, no chart: the main table and chart (latest.*) are kept
    if (json) writeFileSync(path.join(resultsDir, 'access-log.json'), JSON.stringify({ meta, rows, ratios }, null, 2) + '\n');
    writeFileSync(path.join(resultsDir, 'access-log.md'), md + '\n');
    process.stdout.write(`\nwrote ${shown}/${json ? 'access-log.json and ' : ''}access-log.md\n`);
    return;
  }
  if (json) writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify({ meta, rows, ratios, upstreamClient: upstream }, null, 2) + '\n');
  writeFileSync(path.join(resultsDir, 'latest.md'), md + '\n');
  const scenarios = meta.scenarioList;
  const chartScenario = scenarios.find((s) => s === 'get-2B') ?? scenarios.find((s) => MAIN.has(s)) ?? scenarios[0];
  writeFileSync(path.join(resultsDir, 'latest.svg'), svgChart(rows, chartScenario, meta));
  process.stdout.write(`\nwrote ${shown}/${json ? 'latest.json, ' : ''}latest.md and latest.svg (chart: ${chartScenario})\n`);
}

/** --render FILE: redo latest.md and latest.svg (access-log.md for an --access-log run) from its saved JSON, without measuring. */
export function render(file, resultsDir = RESULTS_DIR) {
  const { meta, rows, upstreamClient } = JSON.parse(readFileSync(file, 'utf8'));
  meta.scenarioList ??= Object.keys(meta.scenarios);
  const { md, ratios } = report(meta, rows, upstreamClient);
  process.stdout.write(`${md}\n`);
  writeResults(meta, rows, upstreamClient, md, ratios, false, resultsDir);
}
