// corelb benchmark runner: one origin, several targets measured one after another.
//
//   npm run bench                       (= npm run build --silent && node native-free-bench/run.js)
//   node native-free-bench/run.js --quick
//   node native-free-bench/run.js --duration 20 --only direct,corelb-w1
//
// Flags:
//   --duration N        measured seconds per target and scenario (default 10)
//   --quick             3 s measured, 1 s warm-up, smaller upstream-client count
//   --warmup N          warm-up seconds before each measured window (default 2; 1 with --quick)
//   --connections N     keep-alive connections (default 64); pipelining is always 1
//   --only a,b          only these targets (names as printed)
//   --scenarios a,b     scenarios to run (default get-2B); see SCENARIOS below
//   --no-upstream-client  skip the upstream-client comparison at the end
//   --dist DIR          the corelb build to run (default dist/; used by corelb targets and upstream-client)
//   --access-log        instead of the usual targets: corelb workers=1 with log.access false, true
//                       to a file in a temp dir, and true to stdout (a pipe this runner drains);
//                       results in results/access-log.{md,json}
//   --help
//
// Every number comes from one run on a shared machine: compare rows of the same run.

import { fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BENCH_DIR,
  REPO_ROOT,
  RssSampler,
  clockTicks,
  fmt,
  freePort,
  probe,
  sleep,
  spawnUntilReady,
  startOrigin,
  stopChild,
  treeCpuMicros,
} from './lib.js';

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = {
    duration: 10,
    warmup: 2,
    connections: 64,
    pipelining: 1,
    only: null,
    scenarios: ['get-2B'],
    upstreamClient: true,
    quick: false,
    accessLog: false,
    dist: path.join(REPO_ROOT, 'dist'),
  };
  let durationSet = false;
  let warmupSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (v, name) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: not a positive number: ${v}`);
      return n;
    };
    if (a === '--duration') (o.duration = num(next(), a)), (durationSet = true);
    else if (a === '--warmup') (o.warmup = Number(next())), (warmupSet = true);
    else if (a === '--quick') o.quick = true;
    else if (a === '--connections') o.connections = Math.floor(num(next(), a));
    else if (a === '--only') o.only = next().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--scenarios') o.scenarios = next().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--no-upstream-client') o.upstreamClient = false;
    else if (a === '--access-log') o.accessLog = true;
    else if (a === '--dist') o.dist = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node native-free-bench/run.js [--quick] [--duration N] [--warmup N] [--connections N]\n' +
          '       [--only direct,corelb-w1,corelb-w2] [--scenarios ' + Object.keys(SCENARIOS).join(',') + ']\n' +
          '       [--no-upstream-client] [--dist DIR (default dist/)] [--access-log]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  }
  if (o.quick) {
    if (!durationSet) o.duration = 3;
    if (!warmupSet) o.warmup = 1;
  }
  if (!Number.isFinite(o.warmup) || o.warmup < 0) throw new Error('--warmup: must be >= 0');
  for (const s of o.scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  return o;
}

// ---------------------------------------------------------------- scenarios

/** What the load generator sends. `check` validates one probe response before measuring. */
const SCENARIOS = {
  'get-2B': { method: 'GET', path: '/', check: (r) => r.status === 200 && r.body === 'ok', what: 'GET /, 2-byte body' },
  'get-16KiB': { method: 'GET', path: '/bytes/16384', check: (r) => r.status === 200 && r.body.length === 16384, what: 'GET /bytes/16384' },
  'get-256KiB': { method: 'GET', path: '/bytes/262144', check: (r) => r.status === 200 && r.body.length === 262144, what: 'GET /bytes/262144' },
  'post-4KiB': {
    method: 'POST',
    path: '/sink',
    body: 'x'.repeat(4096),
    headers: { 'content-type': 'application/octet-stream' },
    check: (r) => r.status === 200,
    probeMethod: 'GET',
    probePath: '/',
    what: 'POST /sink, 4 KiB body',
  },
};

// ---------------------------------------------------------------- targets
//
// A target is { name, label, start(ctx), stop(), pid, url, procNote }.
// start() must leave `pid` (the process whose CPU and RSS are measured, descendants included)
// and `url` (base URL to load) set. stop() returns { code, signal, killed } or null.
// More peers (nginx, HAProxy, other node proxies) slot in as further descriptors.

function directTarget() {
  return {
    name: 'direct',
    label: 'origin alone (uWS)',
    pid: 0,
    url: '',
    async start(ctx) {
      this.pid = ctx.origin.pid;
      this.url = ctx.origin.url;
    },
    async stop() {
      return null; // the origin outlives every target
    },
  };
}

const ACCESS_LABELS = { off: '', file: ', access log to a file', stdout: ', access log to stdout (pipe)' };

/** Waits for the `ready` line in a log file (log.file: nothing comes on stdout). */
async function spawnUntilLogFileReady(cmd, args, file, { timeoutMs, label }) {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  const until = Date.now() + timeoutMs;
  while (!(existsSync(file) && readFileSync(file, 'utf8').includes('"msg":"ready"'))) {
    if (exited) throw new Error(`${label}: exited before ready (code ${exited.code}, signal ${exited.signal})\n${stderr}`);
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`${label}: not ready after ${timeoutMs} ms\n${stderr}`);
    }
    await sleep(50);
  }
  return { child };
}

/** access: 'off' (log.access false), 'file' (true, log.file in the temp dir), 'stdout' (true). */
function corelbTarget(workers, dist, access = 'off') {
  return {
    name: `corelb-w${workers}${access === 'off' ? '' : `-access-${access}`}`,
    label: `corelb workers=${workers}${ACCESS_LABELS[access]}`,
    pid: 0,
    url: '',
    child: null,
    dir: '',
    logFile: null,
    async start(ctx) {
      const cli = path.join(dist, 'cli.js');
      if (!existsSync(cli)) throw new Error(`${cli} missing: run npm run build first`);
      const port = await freePort();
      this.dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-'));
      const file = path.join(this.dir, 'corelb.yaml');
      this.logFile = access === 'file' ? path.join(this.dir, 'corelb.log') : null;
      writeFileSync(
        file,
        [
          `listen: { host: 127.0.0.1, port: ${port} }`,
          `workers: ${workers}`,
          // info, not warn: the "ready" line is logged at info (pino level 30) and a warn level
          // filters it out. With access: false nothing is logged per request at info.
          `log: { level: info, access: ${access !== 'off'}${this.logFile ? `, file: ${JSON.stringify(this.logFile)}` : ''} }`,
          'timeouts: { connect: 2s, response: 30s, idle: 60s }',
          'pools:',
          '  web:',
          '    algorithm: round-robin',
          '    backends:',
          `      - ${ctx.origin.url}`,
          '',
        ].join('\n'),
      );
      const args = [cli, 'start', '--config', file];
      const { child } = this.logFile
        ? await spawnUntilLogFileReady(process.execPath, args, this.logFile, { timeoutMs: 30000, label: this.label })
        : await spawnUntilReady(process.execPath, args, {
            isReady: (line) => line.includes('"msg":"ready"'),
            timeoutMs: 30000,
            label: this.label,
          });
      this.child = child;
      this.pid = child.pid;
      this.url = `http://127.0.0.1:${port}`;
      // Keep draining its stdout/stderr so a chatty proxy never blocks on a full pipe.
      child.stdout.resume();
      child.stderr.resume();
    },
    /** Size of the log file so far (a check that the lines were written), or null. */
    logBytes() {
      return this.logFile && existsSync(this.logFile) ? statSync(this.logFile).size : null;
    },
    async stop() {
      let res = null;
      if (this.child) res = await stopChild(this.child, 10000);
      this.child = null;
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
      return res;
    },
  };
}

// ---------------------------------------------------------------- one measurement

function measure(target, origin, scenario, opts) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(BENCH_DIR, 'load-child.js'), [], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const rss = new RssSampler(target.pid, 100);
    // Hard bound on the whole measurement: warm-up + duration + generous slack.
    const limitMs = (opts.warmup + opts.duration) * 1000 + 30000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`load generator did not finish within ${limitMs} ms`));
    }, limitMs);
    let before = null;
    let settled = false;
    function finish(err, value) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const peak = rss.stop();
      if (err) reject(err);
      else resolve({ ...value, peakRss: peak });
    }
    child.on('message', (msg) => {
      if (msg.type === 'warmed') {
        before = { t: process.hrtime.bigint(), cpu: treeCpuMicros(target.pid), originCpu: treeCpuMicros(origin.pid), genCpu: treeCpuMicros(child.pid) };
        child.send({ type: 'go' });
      } else if (msg.type === 'done') {
        const after = { t: process.hrtime.bigint(), cpu: treeCpuMicros(target.pid), originCpu: treeCpuMicros(origin.pid), genCpu: treeCpuMicros(child.pid) };
        finish(null, {
          result: msg.result,
          warmup: null,
          cpuMicros: after.cpu - before.cpu,
          originCpuMicros: after.originCpu - before.originCpu,
          loadGenCpuMicros: after.genCpu - before.genCpu,
          windowSec: Number(after.t - before.t) / 1e9,
        });
      } else if (msg.type === 'error') {
        finish(new Error(`load generator: ${msg.message}`));
      }
    });
    child.on('exit', (code) => {
      if (!settled) finish(new Error(`load generator exited with code ${code}`));
    });
    child.send({
      type: 'run',
      url: target.url + scenario.path,
      method: scenario.method,
      body: scenario.body,
      headers: scenario.headers,
      connections: opts.connections,
      pipelining: opts.pipelining,
      warmup: opts.warmup,
      duration: opts.duration,
    });
  });
}

// ---------------------------------------------------------------- output

const COLS = [
  ['target', (r) => r.label],
  ['scenario', (r) => r.scenario],
  ['req/s', (r) => fmt(r.rps, 0)],
  ['p50 ms', (r) => fmt(r.p50, 1)],
  ['p99 ms', (r) => fmt(r.p99, 1)],
  ['CPU µs/req (target)', (r) => fmt(r.cpuUsPerReq, 1)],
  ['CPU µs/req (origin)', (r) => (r.originCpuUsPerReq === null ? '-' : fmt(r.originCpuUsPerReq, 1))],
  ['peak RSS MB', (r) => fmt(r.peakRssMB, 1)],
  ['errors / non-2xx', (r) => (r.error ? `FAILED: ${r.error.split('\n')[0]}` : `${r.errors} / ${r.non2xx}`)],
];

function markdownTable(rows) {
  const head = `| ${COLS.map((c) => c[0]).join(' | ')} |`;
  const sep = `| ${COLS.map((c, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`;
  const body = rows.map((r) => `| ${COLS.map((c) => c[1](r)).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}

function ratioLines(rows, scenarios) {
  const lines = [];
  const ratios = [];
  const x = (a, b) => (a && b && Number.isFinite(a) && Number.isFinite(b) ? a / b : NaN);
  for (const s of scenarios) {
    const get = (name) => rows.find((r) => r.name === name && r.scenario === s && !r.error);
    const d = get('direct');
    const w1 = get('corelb-w1');
    const w2 = get('corelb-w2');
    const add = (what, num, den, field, note) => {
      if (!num || !den) return;
      const v = x(num[field], den[field]);
      ratios.push({ scenario: s, what, value: v });
      lines.push(`- ${s}: ${what}: ${fmt(v, 2)}x${note ? ` (${note})` : ''}`);
    };
    add('CPU/req corelb workers=1 / direct', w1, d, 'cpuUsPerReq');
    add('CPU/req corelb workers=2 / direct', w2, d, 'cpuUsPerReq');
    add('CPU/req corelb workers=2 / workers=1', w2, w1, 'cpuUsPerReq', 'per request, so >1 means extra cost per request from the second thread');
    add('req/s corelb workers=1 / direct', w1, d, 'rps');
    add('req/s corelb workers=2 / direct', w2, d, 'rps');
    add('req/s corelb workers=2 / workers=1', w2, w1, 'rps');
    for (const access of ['file', 'stdout']) {
      const on = get(`corelb-w1-access-${access}`);
      add(`CPU/req corelb workers=1, access log to ${access} / access log off`, on, w1, 'cpuUsPerReq');
      add(`req/s corelb workers=1, access log to ${access} / access log off`, on, w1, 'rps');
    }
  }
  return { lines, ratios };
}

function upstreamTable(u) {
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

// ---------------------------------------------------------------- upstream-client comparison

function runUpstreamClient(origin, quick, dist) {
  return new Promise((resolve) => {
    const args = [path.join(BENCH_DIR, 'upstream-client.js'), '--origin', origin.url, '--json', '--dist', dist];
    if (quick) args.push('--quick');
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 150000); // 3 clients x (<= 10 s warm-up + <= 20 s + start-up)
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        resolve({ error: `upstream-client.js exited ${code} without a JSON result: ${out.slice(-500)}` });
      }
    });
  });
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const allTargets = opts.accessLog
    ? [corelbTarget(1, opts.dist), corelbTarget(1, opts.dist, 'file'), corelbTarget(1, opts.dist, 'stdout')]
    : [directTarget(), corelbTarget(1, opts.dist), corelbTarget(2, opts.dist)];
  if (opts.accessLog) opts.upstreamClient = false;
  const targets = opts.only ? allTargets.filter((t) => opts.only.includes(t.name)) : allTargets;
  if (targets.length === 0) throw new Error(`--only matched no target; known: ${allTargets.map((t) => t.name).join(', ')}`);

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.availableParallelism(),
    loadavgAtStart: os.loadavg().map((v) => Number(v.toFixed(2))),
    connections: opts.connections,
    pipelining: opts.pipelining,
    warmupSec: opts.warmup,
    durationSec: opts.duration,
    clkTck: clockTicks(),
    loadGenerator: 'autocannon 8 (own child process, programmatic API, workers: 0)',
    cpuSource: '/proc/PID/stat utime+stime (fields 14+15), all threads, process and descendants',
    rssSource: '/proc/PID/status VmRSS, sampled every 100 ms over warm-up + window, process and descendants',
  };

  process.stdout.write(
    `corelb bench: ${opts.connections} keep-alive connections, pipelining ${opts.pipelining}, ` +
      `${opts.warmup} s warm-up + ${opts.duration} s measured per target; ${meta.cpus} CPUs, node ${meta.node}\n`,
  );

  const origin = await startOrigin();
  process.stdout.write(`origin (uWS) pid ${origin.pid} on ${origin.url}\n`);
  const ctx = { origin };
  const rows = [];
  let upstream = null;

  const cleanup = async () => {
    for (const t of targets) await t.stop().catch(() => {});
    await origin.stop();
  };
  const onSignal = () => {
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    for (const target of targets) {
      let started = false;
      try {
        await target.start(ctx);
        started = true;
        process.stdout.write(`\n[${target.name}] pid ${target.pid} on ${target.url}\n`);
        for (const sname of opts.scenarios) {
          const scenario = SCENARIOS[sname];
          const row = { name: target.name, label: target.label, scenario: sname, pid: target.pid };
          try {
            const p = await probe(target.url + (scenario.probePath ?? scenario.path), { method: scenario.probeMethod ?? scenario.method });
            if (!scenario.check(p)) throw new Error(`probe failed: status ${p.status}, body ${JSON.stringify(p.body.slice(0, 80))}`);
            const m = await measure(target, origin, scenario, opts);
            const r = m.result;
            const requests = r.requests.total;
            Object.assign(row, {
              requests,
              durationSec: r.duration,
              rps: requests / r.duration,
              p50: r.latency.p50,
              p99: r.latency.p99,
              latencyMean: r.latency.mean,
              cpuMicros: m.cpuMicros,
              cpuUsPerReq: requests > 0 ? m.cpuMicros / requests : NaN,
              originCpuUsPerReq: target.name === 'direct' ? null : requests > 0 ? m.originCpuMicros / requests : NaN,
              cpuWindowSec: m.windowSec,
              targetCpuCores: m.cpuMicros / 1e6 / m.windowSec,
              loadGenCpuCores: m.loadGenCpuMicros / 1e6 / m.windowSec,
              peakRssMB: m.peakRss / (1024 * 1024),
              errors: r.errors + r.timeouts,
              non2xx: r.non2xx,
              statusCodes: r.statusCodeStats,
            });
            const logBytes = target.logBytes?.() ?? null;
            if (logBytes !== null) row.logFileBytes = logBytes;
            process.stdout.write(
              `  ${sname}: ${fmt(row.rps, 0)} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, ` +
                `${fmt(row.cpuUsPerReq, 1)} µs CPU/req (target ${fmt(row.targetCpuCores, 2)} cores busy, autocannon ${fmt(row.loadGenCpuCores, 2)}), ` +
                `peak RSS ${fmt(row.peakRssMB, 1)} MB, errors ${row.errors}, non-2xx ${row.non2xx}` +
                `${logBytes === null ? '' : `, log file ${fmt(logBytes / (1024 * 1024), 1)} MB so far`}\n`,
            );
          } catch (err) {
            row.error = String(err && err.message ? err.message : err);
            process.stdout.write(`  ${sname}: FAILED: ${row.error}\n`);
          }
          rows.push(row);
        }
      } catch (err) {
        const msg = String(err && err.message ? err.message : err);
        process.stdout.write(`\n[${target.name}] FAILED to start: ${msg}\n`);
        for (const sname of opts.scenarios) rows.push({ name: target.name, label: target.label, scenario: sname, error: `start: ${msg}` });
      } finally {
        if (started || target.child) {
          const exit = await target.stop();
          if (exit) {
            const ok = exit.code === 0 && !exit.killed;
            process.stdout.write(`  stopped with SIGTERM: exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''}${exit.killed ? ' (SIGKILLed after 10 s)' : ''}${ok ? '' : '  <-- expected graceful exit 0'}\n`);
            for (const r of rows) if (r.name === target.name) r.exit = exit;
          }
        }
      }
    }

    if (opts.upstreamClient) {
      process.stdout.write('\nupstream client alone (native-free-bench/upstream-client.js) ...\n');
      upstream = await runUpstreamClient(origin, opts.quick, opts.dist);
    }
  } finally {
    await origin.stop();
  }

  meta.loadavgAtEnd = os.loadavg().map((v) => Number(v.toFixed(2)));
  const { lines, ratios } = ratioLines(rows, opts.scenarios);
  const table = markdownTable(rows);
  const notes = [
    `CPU µs/req = (utime+stime of the target process, all threads, from /proc/PID/stat fields 14+15, ` +
      `sampled right before and after the measured window) / requests completed in the window. ` +
      `For direct it is the origin's. "origin" column = the origin's CPU per proxied request in the same window.`,
    `peak RSS = max VmRSS from /proc/PID/status, sampled every 100 ms. /proc tick = ${1e6 / meta.clkTck} µs.`,
    `Load: autocannon in its own process, ${opts.connections} keep-alive connections, pipelining ${opts.pipelining}, ` +
      `${opts.warmup} s warm-up then ${opts.duration} s measured. ${meta.cpus} CPUs shared by load generator, proxy and origin: ` +
      `compare ratios within this run, not absolute numbers across runs.`,
  ];
  const md = [
    `# corelb bench — ${meta.date}`,
    '',
    `node ${meta.node}, ${meta.platform}, ${meta.cpus} x ${meta.cpuModel}, load average at start ${meta.loadavgAtStart.join(' ')}, at end ${meta.loadavgAtEnd.join(' ')}`,
    '',
    table,
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    '## Ratios',
    '',
    ...(lines.length ? lines : ['- (not enough successful rows)']),
    '',
    ...(upstream ? ['## Upstream HTTP client alone', '', upstreamTable(upstream), ''] : []),
  ].join('\n');

  process.stdout.write(`\n${md}\n`);

  const resultsDir = path.join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  // the access-log comparison keeps its own files: it must not replace the main table
  const base = opts.accessLog ? 'access-log' : 'latest';
  writeFileSync(path.join(resultsDir, `${base}.json`), JSON.stringify({ meta, rows, ratios, upstreamClient: upstream }, null, 2) + '\n');
  writeFileSync(path.join(resultsDir, `${base}.md`), md + '\n');
  process.stdout.write(`\nwrote native-free-bench/results/${base}.json and ${base}.md\n`);
  process.exitCode = rows.some((r) => r.error) ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`bench: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
