// corelb benchmark runner (the entry; its parts are in run/): corelb and its peers measured one after another, the same load against each, every number from the same run.
//
// The main figure (get-2B, conns-1000, new-conn) is measured with wrk against a C origin (nginx
// static, static-origin.js); the other scenarios, and all of them when wrk is missing or with
// --load autocannon, with autocannon (load-child.js) against origin.js.
//
//   npm run bench                       (= npm run build --silent && node native-free-bench/run.js)
//   node native-free-bench/run.js --quick
//   node native-free-bench/run.js --scenarios get-2B --only corelb-w1,nginx --duration 10
//
// Flags:
//   --duration N          measured seconds per row (default 5; 2 with --quick)
//   --warmup N            warm-up seconds before each measured window (default 1; 0.5 with --quick)
//   --rounds N            measure every target of a scenario N times, interleaved (the order
//                         reversed every other round), and report each target's median round by
//                         CPU µs/req (default 3; 1 with --quick; idle-10k always 1). The machine is
//                         shared: a neighbour's burst lands on one round, not on one target.
//   --quick               shorter rows, one round, a smaller upstream-client count, and without the
//                         algorithms and idle-10k scenarios unless --scenarios names them
//   --load L              wrk (default when installed) or autocannon (every scenario)
//   --connections N       keep-alive connections of get-2B, new-conn and algorithms (default 64)
//   --idle-connections N  connections of idle-10k (default 10000)
//   --only a,b            only these targets (names as printed: direct, corelb-w1, corelb-w2,
//                         nginx, nginx-w2, haproxy, node-http-proxy, fastify-proxy, corelb-alg-<algorithm>)
//   --scenarios a,b       scenarios to run (default: all of DEFAULT_SCENARIOS); see run/scenarios.js
//   --no-upstream-client  skip the upstream-client comparison at the end
//   --no-peers            only direct and corelb targets
//   --no-install          do not install what the run needs from Debian when it is missing (wrk,
//                         nginx, HAProxy; by default installed with apt-get when run as root,
//                         see debian-tools.js; otherwise the run goes on without them and says so)
//   --dist DIR            the corelb build to run (default dist/)
//   --access-log          instead of the usual targets: corelb workers=1 with log.access false, true
//                         to log.file in its temp dir, and true to stdout (a pipe this runner
//                         drains); get-2B unless --scenarios; no peers, no upstream-client run;
//                         results in results/access-log.{md,json} (latest.* is left alone)
//   --render FILE         no measuring: redo results/latest.md and latest.svg from a saved latest.json
//                         (or results/access-log.md from a saved access-log.json)
//   --dry-run             no measuring: print the rows planned and the time estimate
//   --out DIR             where the results go (default native-free-bench/results)
//   --help
//
// Progress: rows done / planned, elapsed, and the time left, after every row. SIGINT or SIGTERM:
// the load, every target and the origins are stopped, the rows measured so far are written
// (marked interrupted) and the exit status is 130.
//
// Every target is started fresh for each scenario (so peak RSS of one scenario never carries
// another's buffers) and stopped after it. Every number comes from one run on a shared machine:
// compare rows of the same run.

import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { installMissing } from './debian-tools.js';
import { clockTicks, openFilesLimit, startOrigin } from './lib.js';
import { findNginx, startStaticOrigin } from './static-origin.js';
import { findWrk } from './wrk.js';
import { Progress, clock } from './run/progress.js';
import { medianRound, measureRow, runUpstreamClient, stopEverything } from './run/measure.js';
import { parseArgs } from './run/options.js';
import { render, report, writeResults } from './run/report.js';
import { SCENARIOS, loadFor } from './run/scenarios.js';
import { buildTargets } from './run/targets.js';

/**
 * The native tools this run would use: wrk and its C origin (nginx) for the scenarios wrk
 * measures, unless --load autocannon; nginx and HAProxy as peers when the targets include them.
 */
function toolsNeeded(opts) {
  const tools = [];
  if (opts.load !== 'autocannon' && opts.scenarios.some((s) => loadFor(SCENARIOS[s], { load: 'wrk' }) === 'wrk')) tools.push('wrk', 'nginx');
  const wants = (name) => opts.peers && !opts.accessLog && (opts.only === null || opts.only.includes(name));
  if (wants('nginx') || wants('nginx-w2')) tools.push('nginx');
  if (wants('haproxy')) tools.push('haproxy');
  return tools;
}

/** The signal that interrupted the run, or null. */
let interrupted = null;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.render) return render(opts.render, opts.out);
  if (opts.install && !opts.dryRun) installMissing(toolsNeeded(opts));
  const allTargets = buildTargets(opts);
  const wanted = opts.only ? allTargets.filter((t) => opts.only.includes(t.name)) : allTargets;
  if (wanted.length === 0) throw new Error(`--only matched no target; known: ${allTargets.map((t) => t.name).join(', ')}`);

  // the load: wrk for the scenarios it can measure when it is installed, autocannon otherwise
  const wrkBin = findWrk();
  if (opts.load === 'wrk' && !wrkBin) throw new Error('--load wrk: wrk not found on PATH or in /usr/sbin (apt-get install wrk)');
  const loadNote = opts.load ? null : wrkBin ? null : 'wrk not found (apt-get install wrk): autocannon fallback for every scenario; its figures are not comparable with a wrk run';
  opts.load ??= wrkBin ? 'wrk' : 'autocannon';
  const wrkScenarios = opts.scenarios.filter((s) => loadFor(SCENARIOS[s], opts) === 'wrk');
  const nginxBin = wrkScenarios.length ? findNginx() : null;
  const originNote = wrkScenarios.length && !nginxBin ? 'nginx not found (apt-get install nginx): the wrk scenarios run against the uWS origin (origin.js), not the C origin' : null;

  const skipped = [];
  const targets = [];
  for (const t of wanted) {
    const why = t.unavailable();
    if (why) skipped.push({ name: t.name, label: t.label, reason: why });
    else targets.push(t);
  }

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.availableParallelism(),
    loadavgAtStart: os.loadavg().map((v) => Number(v.toFixed(2))),
    pipelining: opts.pipelining,
    rounds: opts.rounds,
    warmupSec: opts.warmup,
    durationSec: opts.duration,
    connections: opts.connections,
    idleConnections: opts.idleConnections,
    openFilesLimit: openFilesLimit(),
    clkTck: clockTicks(),
    load: opts.load,
    loadNote,
    originNote,
    wrkVersion: wrkBin && opts.load === 'wrk' ? wrkVersion(wrkBin) : null,
    loadGenerator:
      (wrkScenarios.length
        ? `${wrkScenarios.join(', ')}: wrk -t1 --latency (C, its own process; new-conn with -H 'Connection: close') against a C origin (${nginxBin ? 'nginx serving a fixed 2-byte body, static-origin.js' : 'origin.js: nginx missing'}); wrk's own CPU is not counted. Other scenarios: `
        : '') +
      'autocannon 8 (own child process, programmatic API, workers: 0) against origin.js (uWS); new-conn and idle-10k under autocannon: own raw-socket client in the same child (load-child.js)',
    cpuSource: '/proc/PID/stat utime+stime (fields 14+15), all threads, target process and its descendants',
    rssSource: '/proc/PID/status VmRSS, sampled every 100 ms over warm-up + window, process and descendants',
    targets: Object.fromEntries(targets.map((t) => [t.name, { label: t.label, bin: t.bin, versions: t.versions }])),
    skipped,
    scenarios: Object.fromEntries(opts.scenarios.map((s) => [s, { what: SCENARIOS[s].what, connections: SCENARIOS[s].connections(opts), load: loadFor(SCENARIOS[s], opts) }])),
    scenarioList: opts.scenarios,
    opts: { connections: opts.connections, idleConnections: opts.idleConnections },
    accessLog: opts.accessLog,
  };

  process.stdout.write(
    `corelb bench: ${opts.warmup} s warm-up + ${opts.duration} s measured per row, ${opts.rounds} round(s), pipelining ${opts.pipelining}; ` +
      `${meta.cpus} CPUs, node ${meta.node}, load average ${meta.loadavgAtStart.join(' ')}\n` +
      `scenarios: ${opts.scenarios.join(', ')}\n` +
      `targets: ${targets.map((t) => t.name).join(', ')}\n`,
  );
  for (const s of skipped) process.stdout.write(`skipped ${s.name}: ${s.reason}\n`);
  for (const note of [loadNote, originNote]) if (note) process.stdout.write(`note: ${note}\n`);

  const idleNeed = opts.idleConnections + 2000;
  let idleSkip = null;
  if (opts.scenarios.includes('idle-10k') && !(meta.openFilesLimit >= idleNeed)) {
    idleSkip = `open files limit ${meta.openFilesLimit} < ${idleNeed} needed for ${opts.idleConnections} idle connections: run \`ulimit -n ${idleNeed * 2}\` first (or --idle-connections N)`;
    process.stdout.write(`skipped idle-10k: ${idleSkip}\n`);
  }

  // the plan: every (scenario, round, target) row, known before the first one runs
  const plan = [];
  for (const sname of opts.scenarios) {
    if (sname === 'idle-10k' && idleSkip) continue;
    const these = [];
    for (const t of targets.filter((t) => t.runs(sname))) {
      const why = t.cannotRun?.(sname, opts);
      if (why) {
        process.stdout.write(`skipped ${t.name} in ${sname}: ${why}\n`);
        skipped.push({ name: t.name, label: t.label, scenario: sname, reason: why });
      } else these.push(t);
    }
    if (these.length) plan.push({ sname, these, rounds: sname === 'idle-10k' ? 1 : opts.rounds });
  }
  const progress = new Progress(
    plan.flatMap((p) => Array(p.rounds * p.these.length).fill(rowEstimateSec(SCENARIOS[p.sname], opts))),
    opts.upstreamClient ? (opts.quick ? 20 : 45) : 0,
  );
  process.stdout.write(`${progress.total} rows planned, about ${clock(progress.leftSec())}\n`);
  if (opts.dryRun) {
    for (const p of plan) {
      process.stdout.write(`  ${p.sname} (load ${loadFor(SCENARIOS[p.sname], opts)}): ${p.rounds} round(s) of ${p.these.map((t) => t.name).join(', ')}\n`);
    }
    return;
  }

  // an interrupt: stop the load and every child, write the rows measured so far, exit 130
  const live = { load: null }; // the running load generator, for an interrupt
  const rows = [];
  let upstream = null;
  let uws = null; // origin.js
  let cOrigin = null; // the C origin
  let current = null; // the rounds of the scenario being measured: Map target -> rows
  const stopOrigins = async () => {
    await uws?.stop();
    await cOrigin?.stop();
  };
  const onSignal = async (signal) => {
    if (interrupted) return;
    interrupted = signal;
    process.stdout.write(`\n${signal}: `);
    await stopEverything(live, targets, [uws, cOrigin]);
    const partial = [...rows];
    for (const list of current?.values() ?? []) if (list.length) partial.push(medianRound(list));
    meta.interrupted = { signal, rowsDone: progress.done, rowsPlanned: progress.total };
    if (partial.length) finish(meta, partial, null, opts.out);
    else process.stdout.write('no row was complete: nothing written\n');
    process.exit(130);
  };
  // on, not once: a second Ctrl-C while the children stop must not kill the run before it writes
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // origin.js (uWS) for the autocannon scenarios and the upstream-client run; the C origin for wrk's
  const needUws = opts.upstreamClient || !nginxBin || opts.scenarios.some((s) => loadFor(SCENARIOS[s], opts) !== 'wrk');
  uws = needUws ? await startOrigin(3) : null;
  if (uws) uws.label = 'uWS';
  if (uws) process.stdout.write(`origin (uWS, origin.js) pid ${uws.pid} on ${uws.urls.join(', ')}\n`);
  cOrigin = nginxBin ? await startStaticOrigin(nginxBin) : null;
  if (cOrigin) process.stdout.write(`origin (nginx static, static-origin.js) pid ${cOrigin.pid} on ${cOrigin.url}\n`);
  const originFor = (sname) => (cOrigin && loadFor(SCENARIOS[sname], opts) === 'wrk' ? cOrigin : uws);

  try {
    for (const { sname, these, rounds } of plan) {
      const scenario = SCENARIOS[sname];
      const origin = originFor(sname);
      const ctx = { origin, wrkBin, live };
      process.stdout.write(`\n== ${sname}: ${scenario.what} (${scenario.connections(opts)} connections; load ${loadFor(scenario, opts)}, origin ${origin.label}) ==\n`);
      current = new Map(these.map((t) => [t, []]));
      for (let k = 0; k < rounds; k++) {
        if (rounds > 1) process.stdout.write(`  round ${k + 1} of ${rounds}\n`);
        for (const target of k % 2 === 0 ? these : [...these].reverse()) {
          if (interrupted) return;
          const row = await measureRow(target, sname, scenario, ctx, origin, opts);
          if (interrupted) return; // its load was cut: not a row
          current.get(target).push(row);
          process.stdout.write(`  ${progress.rowDone()}\n`);
        }
      }
      for (const target of these) rows.push(medianRound(current.get(target)));
      current = null;
    }

    if (opts.upstreamClient) {
      process.stdout.write('\nupstream client alone (native-free-bench/upstream-client.js) ...\n');
      upstream = await runUpstreamClient(uws, opts.quick, opts.dist, live);
      if (interrupted) return;
    }
  } finally {
    if (!interrupted) await stopOrigins();
  }

  finish(meta, rows, upstream, opts.out);
  process.stdout.write(`run took ${clock(progress.elapsedSec())}\n`);
  process.exitCode = rows.some((r) => r.error) ? 1 : 0;
}

/** The report of `rows` to stdout and results/. */
function finish(meta, rows, upstream, out) {
  meta.loadavgAtEnd = os.loadavg().map((v) => Number(v.toFixed(2)));
  const { md, ratios } = report(meta, rows, upstream);
  process.stdout.write(`\n${md}\n`);
  writeResults(meta, rows, upstream, md, ratios, true, out);
}

/** Seconds one row should take: warm-up (wrk: whole seconds) + window + start, probe and stop of the target. */
function rowEstimateSec(scenario, opts) {
  if (scenario.mode === 'idle') return 25;
  const warm = loadFor(scenario, opts) === 'wrk' ? (opts.warmup > 0 ? Math.max(1, Math.round(opts.warmup)) : 0) : opts.warmup;
  return warm + opts.duration + 1;
}

/** `wrk --version`'s first line ("wrk debian/4.1.0-3+b2 [epoll] ..."), trimmed to name and version. */
function wrkVersion(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].replace(/\s*\[.*$/, '').trim();
}

main().catch((err) => {
  if (interrupted) return; // a start cut by the interrupt: its handler writes and exits
  process.stderr.write(`bench: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
