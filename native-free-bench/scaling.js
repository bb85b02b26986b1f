// Owns the scaling run: corelb with workers 1..N (and nginx with as many worker processes, the control) under one fixed wrk load; req/s and CPU per request per worker count.
//
//   npm run bench:scaling                    (= npm run build --silent && node native-free-bench/scaling.js)
//   node native-free-bench/scaling.js --max 16 --threads 4 --connections 256 --origin-workers 4
//
// Flags:
//   --max N             largest worker count (default: the CPUs, os.availableParallelism())
//   --workers a,b,c     these worker counts instead (default 1..N, or 1, 2, 4, 8 ... N above 8)
//   --rounds N          every worker count measured N times, interleaved (order reversed every
//                       other round); a row is the median round by CPU µs/req (default 3)
//   --duration N        measured seconds per row (default 5), --warmup N (default 1)
//   --threads T         wrk threads (default CPUs / 4, at least 1)
//   --connections C     wrk connections (default 64 per wrk thread)
//   --origin-workers W  worker processes of the nginx origin (default CPUs / 4, at least 1)
//   --no-nginx          corelb only, no nginx control
//   --dist DIR          the corelb build (default dist/)
//   --dry-run           print the plan and its time estimate, measure nothing
//   --no-install        do not install wrk and nginx from Debian when missing (by default: apt-get,
//                       as root; see debian-tools.js)
//   --out DIR           where scaling.md and scaling.json go (default native-free-bench/results)
//   --help
//
// The load is the same for every row (wrk -t T -c C --latency, GET / with a 2-byte answer from
// the C origin, static-origin.js), so a worker count that adds throughput shows it in req/s, and
// one that adds cost per request (contention on shared lines, more threads than free cores)
// shows it in CPU µs/req. wrk and the origin need cores too: on a machine of P CPUs, workers
// beyond P - T - W share cores with the load. Results: a table on stdout and in
// results/scaling.md (results/scaling.json has every round). Nothing here asserts a speed.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installMissing } from './debian-tools.js';
import { REPO_ROOT, eachFlag, fmt } from './lib.js';
import { medianRound, measureRow, stopEverything } from './run/measure.js';
import { RESULTS_DIR } from './run/report.js';
import { clock, Progress } from './run/progress.js';
import { SCENARIOS } from './run/scenarios.js';
import { corelbTarget, nativePeerTarget } from './run/targets.js';
import { findNginx, startStaticOrigin } from './static-origin.js';
import { findWrk } from './wrk.js';

function parseArgs(argv) {
  const cpus = os.availableParallelism();
  const o = { max: cpus, workers: null, rounds: 3, duration: 5, warmup: 1, threads: Math.max(1, Math.floor(cpus / 4)), connections: null, originWorkers: Math.max(1, Math.floor(cpus / 4)), nginx: true, dist: path.join(REPO_ROOT, 'dist'), dryRun: false, install: true, out: RESULTS_DIR };
  eachFlag(argv, (a, next, num) => {
    if (a === '--max') o.max = Math.floor(num());
    else if (a === '--workers') o.workers = next().split(',').map((s) => Math.floor(Number(s)));
    else if (a === '--rounds') o.rounds = Math.floor(num());
    else if (a === '--duration') o.duration = num();
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--threads') o.threads = Math.floor(num());
    else if (a === '--connections') o.connections = Math.floor(num());
    else if (a === '--origin-workers') o.originWorkers = Math.floor(num());
    else if (a === '--no-nginx') o.nginx = false;
    else if (a === '--dist') o.dist = path.resolve(next());
    else if (a === '--dry-run') o.dryRun = true;
    else if (a === '--no-install') o.install = false;
    else if (a === '--out') o.out = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node native-free-bench/scaling.js [--max N | --workers 1,2,4] [--rounds N] [--duration N] [--warmup N]\n' +
          '       [--threads T] [--connections C] [--origin-workers W] [--no-nginx] [--dist DIR] [--dry-run] [--no-install] [--out DIR]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  });
  o.connections ??= 64 * o.threads;
  o.workers ??= o.max <= 8 ? Array.from({ length: o.max }, (_, i) => i + 1) : doubling(o.max);
  if (o.workers.some((w) => !(w >= 1))) throw new Error('--workers: counts >= 1');
  if (!Number.isFinite(o.warmup) || o.warmup < 0) throw new Error('--warmup: must be >= 0');
  return o;
}

/** 1, 2, 4 ... up to and including `max`. */
function doubling(max) {
  const out = [];
  for (let w = 1; w < max; w *= 2) out.push(w);
  return [...out, max];
}

/** One table: a row per worker count, with req/s and CPU per request against workers=1. */
function table(rows) {
  const base = rows.find((r) => r.workers === rows[0].workers && !r.error);
  const x = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b ? `${fmt(a / b, 2)}x` : '');
  const out = [
    `| workers | req/s | req/s / ${base?.workers ?? 1} worker(s) | CPU µs/req | CPU/req / ${base?.workers ?? 1} worker(s) | proxy cores busy | wrk cores busy | p99 ms | errors / non-2xx |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    if (r.error) {
      out.push(`| ${r.workers} | FAILED: ${r.error.split('\n')[0]} | | | | | | | |`);
      continue;
    }
    out.push(
      `| ${r.workers} | ${fmt(r.rps, 0)} | ${x(r.rps, base?.rps)} | ${fmt(r.cpuUsPerReq, 1)} | ${x(r.cpuUsPerReq, base?.cpuUsPerReq)} | ` +
        `${fmt(r.targetCpuCores, 2)} | ${fmt(r.loadGenCpuCores, 2)} | ${fmt(r.p99, 1)} | ${r.errors} / ${r.non2xx} |`,
    );
  }
  return out.join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const targets = [];
  for (const w of opts.workers) {
    const t = corelbTarget({ workers: w, dist: opts.dist, name: `corelb-w${w}`, label: `corelb workers=${w}`, runs: () => true });
    targets.push(Object.assign(t, { kind: 'corelb', workers: w }));
    if (opts.nginx) targets.push(Object.assign(nativePeerTarget('nginx', w), { kind: 'nginx', workers: w }));
  }
  const scenario = SCENARIOS['get-2B'];
  const runOpts = { load: 'wrk', wrkThreads: opts.threads, connections: opts.connections, warmup: opts.warmup, duration: opts.duration };
  const progress = new Progress(Array(targets.length * opts.rounds).fill(Math.max(1, Math.round(opts.warmup)) + opts.duration + 1));
  const cpus = os.availableParallelism();
  process.stdout.write(
    `corelb scaling: workers ${opts.workers.join(', ')}${opts.nginx ? ' (and nginx with as many worker processes)' : ''}; ` +
      `wrk -t${opts.threads} -c${opts.connections} --latency, ${opts.warmup} s warm-up + ${opts.duration} s per row, ${opts.rounds} round(s); ` +
      `origin: nginx static, ${opts.originWorkers} worker(s); ${cpus} CPUs, load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}\n` +
      `${progress.total} rows planned, about ${clock(progress.leftSec())}\n`,
  );
  if (opts.dryRun) return;
  if (opts.install) installMissing(['wrk', 'nginx']);
  const wrkBin = findWrk();
  const nginxBin = findNginx();
  if (!wrkBin || !nginxBin) throw new Error('scaling.js needs wrk and nginx (apt-get install wrk nginx)');

  const origin = await startStaticOrigin(nginxBin, opts.originWorkers);
  const live = { load: null };
  const ctx = { origin, wrkBin, live };
  const byTarget = new Map(targets.map((t) => [t, []]));
  const loadavgAtStart = os.loadavg().map((v) => Number(v.toFixed(2)));
  const report = (interrupted) => {
    const rows = targets.filter((t) => byTarget.get(t).length).map((t) => ({ ...medianRound(byTarget.get(t)), kind: t.kind, workers: t.workers }));
    const loadavgAtEnd = os.loadavg().map((v) => Number(v.toFixed(2)));
    const head =
      `# corelb scaling — ${new Date().toISOString()}\n\n` +
      `${cpus} x ${os.cpus()[0]?.model ?? 'unknown'}, node ${process.version}; load average at start ${loadavgAtStart.join(' ')}, at end ${loadavgAtEnd.join(' ')}. ` +
      `wrk -t${opts.threads} -c${opts.connections} --latency, GET / (2-byte answer) from nginx static (${opts.originWorkers} worker(s)); ${opts.warmup} s warm-up + ${opts.duration} s per row; ` +
      `${opts.rounds} round(s), interleaved, a row is the median round by CPU µs/req. CPU = the proxy's process tree from /proc (utime + stime); "cores busy" = CPU time / window.` +
      (interrupted ? `\n\n**Interrupted (${interrupted}) after ${progress.done} of ${progress.total} rows.**` : '');
    const md = [
      head,
      '',
      '## corelb',
      '',
      table(rows.filter((r) => r.kind === 'corelb')),
      '',
      ...(opts.nginx ? ['## nginx (worker_processes = workers), the control: what this machine lets a proxy gain from more workers', '', table(rows.filter((r) => r.kind === 'nginx')), ''] : []),
    ].join('\n');
    process.stdout.write(`\n${md}\n`);
    mkdirSync(opts.out, { recursive: true });
    writeFileSync(path.join(opts.out, 'scaling.md'), md + '\n');
    writeFileSync(path.join(opts.out, 'scaling.json'), JSON.stringify({ opts, cpus, loadavgAtStart, loadavgAtEnd, rows }, null, 2) + '\n');
    process.stdout.write(`wrote ${path.relative(process.cwd(), opts.out) || '.'}/scaling.md and scaling.json\n`);
    return rows;
  };

  let interrupted = null;
  const onSignal = async (signal) => {
    if (interrupted) return;
    interrupted = signal;
    process.stdout.write(`\n${signal}: `);
    await stopEverything(live, targets, [origin]);
    report(signal);
    process.exit(130);
  };
  // on, not once: a second Ctrl-C while the children stop must not kill the run before it writes
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    for (let k = 0; k < opts.rounds; k++) {
      if (opts.rounds > 1) process.stdout.write(`round ${k + 1} of ${opts.rounds}\n`);
      for (const t of k % 2 === 0 ? targets : [...targets].reverse()) {
        if (interrupted) return;
        const row = await measureRow(t, 'get-2B', scenario, ctx, origin, runOpts);
        if (interrupted) return;
        byTarget.get(t).push(row);
        process.stdout.write(`  ${progress.rowDone()}\n`);
      }
    }
  } finally {
    if (!interrupted) await origin.stop();
  }
  const rows = report(null);
  process.stdout.write(`run took ${clock(progress.elapsedSec())}\n`);
  process.exitCode = rows.some((r) => r.error) ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`scaling: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
