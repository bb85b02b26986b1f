// Owns run.js's command line: the flags, their defaults, what --quick and --access-log change, --help.

import path from 'node:path';
import { REPO_ROOT, eachFlag } from '../lib.js';
import { RESULTS_DIR } from './report.js';
import { DEFAULT_SCENARIOS, QUICK_SCENARIOS, SCENARIOS } from './scenarios.js';

export function parseArgs(argv) {
  const o = {
    duration: 5,
    warmup: 1,
    connections: 64,
    idleConnections: 10000,
    pipelining: 1,
    rounds: 3,
    only: null,
    scenarios: DEFAULT_SCENARIOS,
    upstreamClient: true,
    install: true,
    peers: true,
    quick: false,
    accessLog: false,
    load: null, // 'wrk' or 'autocannon'; null: wrk when it is installed (decided by run.js)
    dist: path.join(REPO_ROOT, 'dist'),
    out: RESULTS_DIR,
  };
  let durationSet = false;
  let roundsSet = false;
  let warmupSet = false;
  let scenariosSet = false;
  eachFlag(argv, (a, next, num) => {
    if (a === '--duration') (o.duration = num()), (durationSet = true);
    else if (a === '--warmup') (o.warmup = Number(next())), (warmupSet = true);
    else if (a === '--quick') o.quick = true;
    else if (a === '--rounds') (o.rounds = Math.floor(num())), (roundsSet = true);
    else if (a === '--connections') o.connections = Math.floor(num());
    else if (a === '--idle-connections') o.idleConnections = Math.floor(num());
    else if (a === '--only') o.only = next().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--scenarios') (o.scenarios = next().split(',').map((s) => s.trim()).filter(Boolean)), (scenariosSet = true);
    else if (a === '--load') {
      o.load = next();
      if (o.load !== 'wrk' && o.load !== 'autocannon') throw new Error('--load: wrk or autocannon');
    } else if (a === '--dry-run') o.dryRun = true;
    else if (a === '--no-upstream-client') o.upstreamClient = false;
    else if (a === '--no-install') o.install = false;
    else if (a === '--no-peers') o.peers = false;
    else if (a === '--access-log') o.accessLog = true;
    else if (a === '--dist') o.dist = path.resolve(next());
    else if (a === '--render') o.render = path.resolve(next());
    else if (a === '--out') o.out = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node native-free-bench/run.js [--quick] [--rounds N] [--duration N] [--warmup N] [--connections N] [--load wrk|autocannon]\n' +
          '       [--dry-run (print the plan and its time estimate, measure nothing)] [--out DIR (default native-free-bench/results)]\n' +
          '       [--idle-connections N] [--only direct,corelb-w1,corelb-w2,nginx,nginx-w2,haproxy,node-http-proxy,fastify-proxy,corelb-alg-<algorithm>]\n' +
          '       [--scenarios ' + Object.keys(SCENARIOS).join(',') + ']\n' +
          '       [--no-peers] [--no-upstream-client] [--no-install] [--dist DIR (default dist/)]\n' +
          '       node native-free-bench/run.js --access-log [--quick] [--scenarios ...]   (corelb workers=1, access log off / file / stdout -> results/access-log.md)\n' +
          '       node native-free-bench/run.js --render results/latest.json   (redo latest.md and latest.svg, no measuring)\n' +
          `default scenarios: ${DEFAULT_SCENARIOS.join(',')}\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  });
  if (o.quick) {
    // under 3 minutes on a 2-core machine: one round of 2 s rows, without the algorithms and
    // idle-10k scenarios unless they are asked for
    if (!durationSet) o.duration = 2;
    if (!warmupSet) o.warmup = 0.5;
    if (!roundsSet) o.rounds = 1;
    if (!scenariosSet) o.scenarios = QUICK_SCENARIOS;
  }
  if (o.accessLog) {
    // corelb against itself: no peers, no upstream client; the tiny GET unless told otherwise
    o.peers = false;
    o.upstreamClient = false;
    if (!scenariosSet) o.scenarios = ['get-2B'];
  }
  if (!Number.isFinite(o.warmup) || o.warmup < 0) throw new Error('--warmup: must be >= 0');
  for (const s of o.scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  return o;
}
