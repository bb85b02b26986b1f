// corelb benchmark runner: one origin, corelb and its peers measured one after another, the
// same load against each, every number from the same run.
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
//   --quick               shorter rows, one round and a smaller upstream-client count
//   --connections N       keep-alive connections of get-2B, new-conn and algorithms (default 64)
//   --idle-connections N  connections of idle-10k (default 10000)
//   --only a,b            only these targets (names as printed: direct, corelb-w1, corelb-w2,
//                         nginx, nginx-w2, haproxy, node-http-proxy, fastify-proxy, corelb-alg-<algorithm>)
//   --scenarios a,b       scenarios to run (default: all of DEFAULT_SCENARIOS); see SCENARIOS
//   --no-upstream-client  skip the upstream-client comparison at the end
//   --no-peers            only direct and corelb targets
//   --dist DIR            the corelb build to run (default dist/)
//   --access-log          instead of the usual targets: corelb workers=1 with log.access false, true
//                         to log.file in its temp dir, and true to stdout (a pipe this runner
//                         drains); get-2B unless --scenarios; no peers, no upstream-client run;
//                         results in results/access-log.{md,json} (latest.* is left alone)
//   --render FILE         no measuring: redo results/latest.md and latest.svg from a saved latest.json
//                         (or results/access-log.md from a saved access-log.json)
//   --help
//
// Every target is started fresh for each scenario (so peak RSS of one scenario never carries
// another's buffers) and stopped after it. Every number comes from one run on a shared machine:
// compare rows of the same run.

import os from 'node:os';
import { clockTicks, openFilesLimit, startOrigin } from './lib.js';
import { medianRound, measureRow, runUpstreamClient } from './run/measure.js';
import { parseArgs } from './run/options.js';
import { render, report, writeResults } from './run/report.js';
import { SCENARIOS } from './run/scenarios.js';
import { buildTargets } from './run/targets.js';

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.render) return render(opts.render);
  const allTargets = buildTargets(opts);
  const wanted = opts.only ? allTargets.filter((t) => opts.only.includes(t.name)) : allTargets;
  if (wanted.length === 0) throw new Error(`--only matched no target; known: ${allTargets.map((t) => t.name).join(', ')}`);

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
    loadGenerator:
      'autocannon 8 (own child process, programmatic API, workers: 0); new-conn and idle-10k: own raw-socket client in the same child (load-child.js)',
    cpuSource: '/proc/PID/stat utime+stime (fields 14+15), all threads, target process and its descendants',
    rssSource: '/proc/PID/status VmRSS, sampled every 100 ms over warm-up + window, process and descendants',
    targets: Object.fromEntries(targets.map((t) => [t.name, { label: t.label, bin: t.bin, versions: t.versions }])),
    skipped,
    scenarios: Object.fromEntries(opts.scenarios.map((s) => [s, { what: SCENARIOS[s].what, connections: SCENARIOS[s].connections(opts) }])),
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

  const idleNeed = opts.idleConnections + 2000;
  let idleSkip = null;
  if (opts.scenarios.includes('idle-10k') && !(meta.openFilesLimit >= idleNeed)) {
    idleSkip = `open files limit ${meta.openFilesLimit} < ${idleNeed} needed for ${opts.idleConnections} idle connections: run \`ulimit -n ${idleNeed * 2}\` first (or --idle-connections N)`;
    process.stdout.write(`skipped idle-10k: ${idleSkip}\n`);
  }

  const origin = await startOrigin(3);
  process.stdout.write(`origin (uWS) pid ${origin.pid} on ${origin.urls.join(', ')}\n`);
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
    for (const sname of opts.scenarios) {
      const scenario = SCENARIOS[sname];
      if (sname === 'idle-10k' && idleSkip) continue;
      const these = [];
      for (const t of targets.filter((t) => t.runs(sname))) {
        const why = t.cannotRun?.(sname, opts);
        if (why) {
          process.stdout.write(`skipped ${t.name} in ${sname}: ${why}\n`);
          skipped.push({ name: t.name, label: t.label, scenario: sname, reason: why });
        } else these.push(t);
      }
      if (these.length === 0) continue;
      process.stdout.write(`\n== ${sname}: ${scenario.what} (${scenario.connections(opts)} connections) ==\n`);
      const rounds = sname === 'idle-10k' ? 1 : opts.rounds;
      const byTarget = new Map(these.map((t) => [t, []]));
      for (let k = 0; k < rounds; k++) {
        if (rounds > 1) process.stdout.write(`  round ${k + 1} of ${rounds}\n`);
        for (const target of k % 2 === 0 ? these : [...these].reverse()) {
          byTarget.get(target).push(await measureRow(target, sname, scenario, ctx, origin, opts));
        }
      }
      for (const target of these) rows.push(medianRound(byTarget.get(target)));
    }

    if (opts.upstreamClient) {
      process.stdout.write('\nupstream client alone (native-free-bench/upstream-client.js) ...\n');
      upstream = await runUpstreamClient(origin, opts.quick, opts.dist);
    }
  } finally {
    await origin.stop();
  }

  meta.loadavgAtEnd = os.loadavg().map((v) => Number(v.toFixed(2)));
  const { md, ratios } = report(meta, rows, upstream);
  process.stdout.write(`\n${md}\n`);
  writeResults(meta, rows, upstream, md, ratios, true);
  process.exitCode = rows.some((r) => r.error) ? 1 : 0;
}


main().catch((err) => {
  process.stderr.write(`bench: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
