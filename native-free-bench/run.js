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

import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BENCH_DIR,
  REPO_ROOT,
  RssSampler,
  clockTicks,
  eachFlag,
  findExecutable,
  fmt,
  freePort,
  openFilesLimit,
  probe,
  resolvePackage,
  sleep,
  spawnUntilFileReady,
  spawnUntilListening,
  spawnUntilReady,
  startOrigin,
  stopChild,
  treeCpuMicros,
  treeRssBytes,
} from './lib.js';

const MiB = 1024 * 1024;
const ALGORITHMS = ['round-robin', 'least-connections', 'random', 'p2c', 'ewma', 'consistent-hash'];
/** Paths the algorithms scenario cycles through (distinct keys for consistent-hash, hash_key path). */
const KEY_PATHS = Array.from({ length: 64 }, (_, i) => `/k/${i}`);

// ---------------------------------------------------------------- scenarios

/**
 * What the load generator sends. `mode`: autocannon (keep-alive), new-conn or idle (own clients
 * in load-child.js). `connections(opts)`: how many. `mib`: 'down' (response bytes) or 'up'
 * (request body bytes) for a MiB/s column. `check` validates one probe before measuring.
 */
const SCENARIOS = {
  'get-2B': {
    what: 'GET /, 2-byte body, keep-alive',
    method: 'GET',
    path: '/',
    connections: (o) => o.connections,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  'get-1MiB': {
    what: 'GET /bytes/1048576, 1 MiB responses, keep-alive',
    method: 'GET',
    path: '/bytes/1048576',
    connections: () => 8,
    mib: 'down',
    check: (r) => r.status === 200 && r.body.length === MiB,
  },
  'post-1MiB': {
    what: 'POST /sink with a 1 MiB body, short answer, keep-alive',
    method: 'POST',
    path: '/sink',
    bodyBytes: MiB,
    connections: () => 8,
    mib: 'up',
    check: (r) => r.status === 200,
    probeMethod: 'GET',
    probePath: '/',
  },
  'conns-1000': {
    what: 'GET /, 2-byte body, 1,000 keep-alive connections at once',
    method: 'GET',
    path: '/',
    connections: () => 1000,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  'new-conn': {
    what: 'GET / with Connection: close, a new TCP connection per request (own client)',
    mode: 'new-conn',
    method: 'GET',
    path: '/',
    connections: (o) => o.connections,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  algorithms: {
    what: 'corelb workers=1 over 3 origin ports, GET /k/0../k/63 (64 keys), keep-alive',
    method: 'GET',
    path: KEY_PATHS[0],
    requests: KEY_PATHS.map((p) => ({ method: 'GET', path: p })),
    connections: (o) => o.connections,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  'idle-10k': {
    what: 'N idle keep-alive connections (one GET each), RSS held, then one more GET on each',
    mode: 'idle',
    method: 'GET',
    path: '/',
    connections: (o) => o.idleConnections,
    idleSec: 3,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  // not in the default set
  'get-16KiB': {
    what: 'GET /bytes/16384, keep-alive',
    method: 'GET',
    path: '/bytes/16384',
    connections: (o) => o.connections,
    mib: 'down',
    check: (r) => r.status === 200 && r.body.length === 16384,
  },
  'get-256KiB': {
    what: 'GET /bytes/262144, keep-alive',
    method: 'GET',
    path: '/bytes/262144',
    connections: (o) => o.connections,
    mib: 'down',
    check: (r) => r.status === 200 && r.body.length === 262144,
  },
  'post-4KiB': {
    what: 'POST /sink with a 4 KiB body, keep-alive',
    method: 'POST',
    path: '/sink',
    bodyBytes: 4096,
    connections: (o) => o.connections,
    mib: 'up',
    check: (r) => r.status === 200,
    probeMethod: 'GET',
    probePath: '/',
  },
};
const DEFAULT_SCENARIOS = ['get-2B', 'get-1MiB', 'post-1MiB', 'conns-1000', 'new-conn', 'algorithms', 'idle-10k'];
/** Scenarios every "main" target runs (direct runs them except idle-10k). */
const MAIN = new Set(['get-2B', 'get-1MiB', 'post-1MiB', 'conns-1000', 'new-conn', 'get-16KiB', 'get-256KiB', 'post-4KiB']);

// ---------------------------------------------------------------- options

function parseArgs(argv) {
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
    peers: true,
    quick: false,
    accessLog: false,
    dist: path.join(REPO_ROOT, 'dist'),
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
    else if (a === '--no-upstream-client') o.upstreamClient = false;
    else if (a === '--no-peers') o.peers = false;
    else if (a === '--access-log') o.accessLog = true;
    else if (a === '--dist') o.dist = path.resolve(next());
    else if (a === '--render') o.render = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node native-free-bench/run.js [--quick] [--rounds N] [--duration N] [--warmup N] [--connections N]\n' +
          '       [--idle-connections N] [--only direct,corelb-w1,corelb-w2,nginx,nginx-w2,haproxy,node-http-proxy,fastify-proxy,corelb-alg-<algorithm>]\n' +
          '       [--scenarios ' + Object.keys(SCENARIOS).join(',') + ']\n' +
          '       [--no-peers] [--no-upstream-client] [--dist DIR (default dist/)]\n' +
          '       node native-free-bench/run.js --access-log [--quick] [--scenarios ...]   (corelb workers=1, access log off / file / stdout -> results/access-log.md)\n' +
          '       node native-free-bench/run.js --render results/latest.json   (redo latest.md and latest.svg, no measuring)\n' +
          `default scenarios: ${DEFAULT_SCENARIOS.join(',')}\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  });
  if (o.quick) {
    if (!durationSet) o.duration = 2;
    if (!warmupSet) o.warmup = 0.5;
    if (!roundsSet) o.rounds = 1;
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

// ---------------------------------------------------------------- targets
//
// A target is { name, label, group, runs(scenario), unavailable(), start(ctx), stop(), pid, url }.
// unavailable() returns null or why it is skipped (printed). start() must leave `pid` (the
// process whose CPU and RSS are measured, descendants included: nginx's master and its worker)
// and `url` set. stop() returns { code, signal, killed } or null. Targets are started fresh for
// each scenario they run.

function directTarget() {
  return {
    name: 'direct',
    label: 'origin alone (uWS)',
    group: 'origin',
    runs: (s) => MAIN.has(s),
    unavailable: () => null,
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

/** Stops a target's child process (SIGTERM, then SIGKILL after 10 s) and removes its temp dir. */
async function stopTarget(t) {
  const res = t.child ? await stopChild(t.child, 10000) : null;
  t.child = null;
  if (t.dir) rmSync(t.dir, { recursive: true, force: true });
  t.dir = '';
  return res;
}

/**
 * corelb through its CLI. `access`: 'off' (log.access false), 'file' (true, log.file in the
 * target's temp dir: nothing comes on stdout, the ready line is read from the file) or 'stdout'
 * (true, on the stdout pipe this runner drains).
 */
function corelbTarget({ workers, dist, algorithm = 'round-robin', threeBackends = false, access = 'off', name, label, runs }) {
  return {
    name,
    label,
    group: 'corelb',
    runs,
    unavailable: () => (existsSync(path.join(dist, 'cli.js')) ? null : `${path.join(dist, 'cli.js')} missing: run npm run build first`),
    pid: 0,
    url: '',
    child: null,
    dir: '',
    logFile: null,
    stdoutBytes: 0,
    async start(ctx) {
      const cli = path.join(dist, 'cli.js');
      const port = await freePort();
      this.dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-'));
      const file = path.join(this.dir, 'corelb.yaml');
      const backends = threeBackends ? ctx.origin.urls : [ctx.origin.url];
      this.logFile = access === 'file' ? path.join(this.dir, 'corelb.log') : null;
      this.stdoutBytes = 0;
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
          `    algorithm: ${algorithm}`,
          ...(algorithm === 'consistent-hash' ? ['    hash_key: path'] : []),
          '    backends:',
          ...backends.map((b) => `      - ${b}`),
          '',
        ].join('\n'),
      );
      const args = [cli, 'start', '--config', file];
      const isReady = (line) => line.includes('"msg":"ready"');
      const { child } = this.logFile
        ? await spawnUntilFileReady(process.execPath, args, { file: this.logFile, isReady, timeoutMs: 30000, label: this.label })
        : await spawnUntilReady(process.execPath, args, { isReady, timeoutMs: 30000, label: this.label });
      this.child = child;
      this.pid = child.pid;
      this.url = `http://127.0.0.1:${port}`;
      // Keep draining its stdout/stderr so a chatty proxy never blocks on a full pipe (counting
      // the bytes: with the access log on stdout, a check that the lines were written).
      child.stdout.on('data', (d) => (this.stdoutBytes += d.length));
      child.stdout.resume();
      child.stderr.resume();
    },
    /** Access-log bytes so far (log file size, or stdout bytes since ready), or null when off. */
    logBytes() {
      if (access === 'file') return this.logFile && existsSync(this.logFile) ? statSync(this.logFile).size : null;
      return access === 'stdout' ? this.stdoutBytes : null;
    },
    stop() {
      return stopTarget(this);
    },
  };
}

/** Version of an installed package (read from its package.json next to its entry), or '?'. */
function packageVersion(specifier) {
  const entry = resolvePackage(specifier);
  if (!entry) return '?';
  let dir = path.dirname(entry);
  for (let i = 0; i < 6; i++) {
    const f = path.join(dir, 'package.json');
    if (existsSync(f)) {
      try {
        const p = JSON.parse(readFileSync(f, 'utf8'));
        if (p.name === specifier) return p.version;
      } catch {
        /* keep looking */
      }
    }
    dir = path.dirname(dir);
  }
  return '?';
}

/** A node proxy from peers/: `node peers/<script> PORT ORIGIN_URL`, prints `ready`. */
function nodePeerTarget({ name, title, script, packages }) {
  const missing = packages.filter((p) => !resolvePackage(p));
  const version = missing.length ? '' : ` ${packageVersion(packages[packages.length - 1])}`;
  return {
    name,
    label: `${title}${version}`,
    group: 'node',
    runs: (s) => MAIN.has(s) || s === 'idle-10k',
    unavailable: () =>
      missing.length
        ? `npm package(s) ${missing.join(', ')} not found (dev dependencies: npm install; or NODE_PATH=<dir>/node_modules)`
        : null,
    versions: Object.fromEntries(packages.map((p) => [p, packageVersion(p)])),
    pid: 0,
    url: '',
    child: null,
    async start(ctx) {
      const port = await freePort();
      const { child } = await spawnUntilReady(process.execPath, [path.join(BENCH_DIR, 'peers', script), String(port), ctx.origin.url], {
        isReady: (l) => l.trim() === 'ready',
        timeoutMs: 20000,
        label: this.label,
      });
      child.stdout.resume();
      child.stderr.resume();
      this.child = child;
      this.pid = child.pid;
      this.url = `http://127.0.0.1:${port}`;
    },
    stop() {
      return stopTarget(this);
    },
  };
}

function fillTemplate(file, values) {
  let s = readFileSync(path.join(BENCH_DIR, 'peers', file), 'utf8');
  for (const [k, v] of Object.entries(values)) s = s.split(`{{${k}}}`).join(v);
  return s;
}

/**
 * nginx or HAProxy from peers/<template>, when the binary is on PATH (or in /usr/sbin).
 * `workers: 2` (nginx only): worker_processes 2, the control for corelb's workers=2 / workers=1
 * on this machine, run on the small-request scenarios only.
 */
function nativePeerTarget(kind, workers = 1) {
  const bin = findExecutable(kind);
  // `nginx -v` prints to stderr, `haproxy -v` to stdout
  const version = bin ? (versionText(bin).match(kind === 'nginx' ? /nginx\/([\d.]+)/ : /version ([\d.]+)/i)?.[1] ?? '') : '';
  const title = kind === 'nginx' ? 'nginx' : 'HAProxy';
  // HAProxy wants 2 fds per connection (+ a few) under the open files limit, or it will not start
  const limit = openFilesLimit();
  const maxconn = Math.max(1000, Math.min(30000, Math.floor(((Number.isFinite(limit) ? limit : 30000) - 100) / 2)));
  return {
    name: workers === 1 ? kind : `${kind}-w${workers}`,
    label: `${title}${version ? ' ' + version : ''}${workers === 1 ? '' : ` workers=${workers}`}`,
    group: 'native',
    bin,
    version,
    maxconn: kind === 'haproxy' ? maxconn : undefined,
    runs: workers === 1 ? (s) => MAIN.has(s) || s === 'idle-10k' : (s) => MAIN.has(s) && !SCENARIOS[s].mib,
    /** Why it cannot run a scenario it would run (printed), or null. */
    cannotRun(s, opts) {
      if (kind === 'haproxy' && s === 'idle-10k' && maxconn < opts.idleConnections + 10) {
        return `HAProxy's maxconn is ${maxconn} here (open files limit ${limit}, 2 per connection): fewer than ${opts.idleConnections} idle connections; raise ulimit -n to ${2 * opts.idleConnections + 200}`;
      }
      return null;
    },
    unavailable: () => (bin ? null : `${kind} not found on PATH or in /usr/sbin (apt-get install ${kind} to include it)`),
    pid: 0,
    url: '',
    child: null,
    dir: '',
    async start(ctx) {
      const port = await freePort();
      this.dir = mkdtempSync(path.join(os.tmpdir(), `corelb-bench-${kind}-`));
      const origin = `127.0.0.1:${ctx.origin.port}`;
      let args;
      if (kind === 'nginx') {
        // as root, nginx would switch its worker to `nobody`: keep the current user instead
        let conf = fillTemplate('nginx.conf.template', { DIR: this.dir, PORT: String(port), ORIGIN: origin });
        if (workers !== 1) conf = conf.replace('worker_processes 1;', `worker_processes ${workers};`);
        if (process.getuid?.() === 0) conf = `user ${os.userInfo().username};\n` + conf;
        writeFileSync(path.join(this.dir, 'nginx.conf'), conf);
        args = ['-p', this.dir, '-c', path.join(this.dir, 'nginx.conf'), '-g', 'daemon off;'];
      } else {
        writeFileSync(path.join(this.dir, 'haproxy.cfg'), fillTemplate('haproxy.cfg.template', { DIR: this.dir, PORT: String(port), ORIGIN: origin, MAXCONN: String(maxconn) }));
        args = ['-f', path.join(this.dir, 'haproxy.cfg'), '-db'];
      }
      this.url = `http://127.0.0.1:${port}`;
      const { child } = await spawnUntilListening(bin, args, { url: this.url + '/', cwd: this.dir, label: this.label });
      this.child = child;
      this.pid = child.pid;
    },
    stop() {
      // nginx: SIGTERM is its fast shutdown; HAProxy: SIGTERM (hard stop) in the foreground
      return stopTarget(this);
    },
  };
}

/** `BIN -v`, stdout and stderr together. */
function versionText(bin) {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

const ACCESS_LABELS = { off: 'access log off', file: 'access log to a file', stdout: 'access log to stdout (pipe)' };

function buildTargets(opts) {
  const main = (s) => MAIN.has(s) || s === 'idle-10k';
  if (opts.accessLog) {
    // off keeps the name corelb-w1, so its row is the "workers=1" of every other ratio too
    return ['off', 'file', 'stdout'].map((access) =>
      corelbTarget({
        workers: 1,
        dist: opts.dist,
        access,
        name: access === 'off' ? 'corelb-w1' : `corelb-w1-access-${access}`,
        label: `corelb workers=1, ${ACCESS_LABELS[access]}`,
        runs: main,
      }),
    );
  }
  const targets = [
    directTarget(),
    corelbTarget({ workers: 1, dist: opts.dist, name: 'corelb-w1', label: 'corelb workers=1', runs: main }),
    corelbTarget({ workers: 2, dist: opts.dist, name: 'corelb-w2', label: 'corelb workers=2', runs: main }),
  ];
  if (opts.peers) {
    targets.push(
      nativePeerTarget('nginx'),
      nativePeerTarget('nginx', 2),
      nativePeerTarget('haproxy'),
      nodePeerTarget({ name: 'node-http-proxy', title: 'node-http-proxy', script: 'node-http-proxy.js', packages: ['http-proxy'] }),
      nodePeerTarget({ name: 'fastify-proxy', title: '@fastify/http-proxy', script: 'fastify-proxy.js', packages: ['fastify', '@fastify/http-proxy'] }),
    );
  }
  for (const algorithm of ALGORITHMS) {
    targets.push(
      corelbTarget({
        workers: 1,
        dist: opts.dist,
        algorithm,
        threeBackends: true,
        name: `corelb-alg-${algorithm}`,
        label: `corelb workers=1, ${algorithm}`,
        runs: (s) => s === 'algorithms',
      }),
    );
  }
  return targets;
}

// ---------------------------------------------------------------- one measurement

function measure(target, origin, scenario, sname, opts) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(BENCH_DIR, 'load-child.js'), [], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const rssBefore = treeRssBytes(target.pid);
    const rss = new RssSampler(target.pid, 100);
    // Hard bound on the whole measurement: warm-up (or opening idle connections) + duration + slack.
    const limitMs = (scenario.mode === 'idle' ? 120 : opts.warmup + opts.duration) * 1000 + 30000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`load generator did not finish within ${limitMs} ms`));
    }, limitMs);
    let before = null;
    let rssHeld = NaN;
    let warm = null;
    let settled = false;
    function finish(err, value) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const peak = rss.stop();
      if (err) reject(err);
      else resolve({ ...value, peakRss: peak, rssBefore, rssHeld, warm });
    }
    const sample = () => ({
      t: process.hrtime.bigint(),
      cpu: treeCpuMicros(target.pid),
      originCpu: treeCpuMicros(origin.pid),
      genCpu: treeCpuMicros(child.pid),
      rss: treeRssBytes(target.pid),
    });
    child.on('message', async (msg) => {
      if (msg.type === 'warmed') {
        warm = msg.warmup;
        if (scenario.idleSec) {
          // connections open and idle: let the target settle, then take its RSS
          await sleep(scenario.idleSec * 1000);
          rssHeld = treeRssBytes(target.pid);
        }
        if (settled) return;
        before = sample();
        child.send({ type: 'go' });
      } else if (msg.type === 'done') {
        const after = sample();
        finish(null, {
          result: msg.result,
          cpuMicros: after.cpu - before.cpu,
          originCpuMicros: after.originCpu - before.originCpu,
          loadGenCpuMicros: after.genCpu - before.genCpu,
          windowSec: Number(after.t - before.t) / 1e9,
          rssWindowStart: before.rss,
          rssWindowEnd: after.rss,
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
      mode: scenario.mode ?? 'autocannon',
      url: target.url + scenario.path,
      method: scenario.method,
      bodyBytes: scenario.bodyBytes,
      headers: scenario.bodyBytes ? { 'content-type': 'application/octet-stream' } : undefined,
      requests: scenario.requests,
      connections: scenario.connections(opts),
      pipelining: opts.pipelining,
      warmup: opts.warmup,
      duration: opts.duration,
      inflight: 256,
    });
  });
}

// ---------------------------------------------------------------- output

const mb = (bytes) => bytes / MiB;

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
  ['errors / non-2xx', (r) => (r.error ? `FAILED: ${r.error.split('\n')[0]}` : `${r.errors} / ${r.non2xx}`)],
];

function markdownTable(rows) {
  const head = `| ${COLS.map((c) => c[0]).join(' | ')} |`;
  const sep = `| ${COLS.map((c, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`;
  const body = rows.map((r) => `| ${COLS.map((c) => c[1](r)).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}

function idleTable(rows) {
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
 * <= 1.25, req/s >= 0.8, p99 <= 2; req/s >= 3x each node proxy; workers=2 / workers=1 CPU per
 * request <= 1.1. On 1 MiB bodies: MiB/s >= 0.8x nginx's, RSS flat. idle-10k: < 200 MB, all served.
 */
function computeRatios(rows, scenarios) {
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
      add(s, pair, w1, p, 'cpuUsPerReq', g && small ? ['<=', 1.25] : undefined);
      add(s, pair, w1, p, 'rps', g && small ? ['>=', 0.8] : undefined);
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

// ---------------------------------------------------------------- SVG chart (hand-written)

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A "nice" axis maximum and step (1, 2, 2.5 or 5 x 10^k) for values up to `max`. */
function niceAxis(max, ticks = 5) {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
  return { top: Math.ceil(max / step) * step, step };
}

const COLORS = { corelb: '#1f6feb', native: '#6e7781', node: '#bf8700', origin: '#afb8c1' };

/**
 * Two stacked panels for one scenario: req/s (higher is better) and CPU µs per request of the
 * target process (lower is better), one bar per target, values printed on the bars.
 */
function svgChart(rows, scenario, meta) {
  const data = rows.filter((r) => r.scenario === scenario && !r.error);
  const W = 960;
  const left = 90;
  const right = 20;
  const panelH = 230;
  const top = 100;
  const gap = 95; // room for the x labels under each panel
  const H = top + 2 * (panelH + gap) + 20;
  const n = Math.max(1, data.length);
  const slot = (W - left - right) / n;
  const barW = Math.min(70, slot * 0.6);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="26" text-anchor="middle" font-size="18" font-weight="600" fill="#24292f">corelb and peers: ${esc(SCENARIOS[scenario]?.what ?? scenario)}</text>`);
  out.push(
    `<text x="${W / 2}" y="48" text-anchor="middle" font-size="12" fill="#57606a">${esc(
      `${meta.date.slice(0, 10)} · ${meta.cpus} CPUs (${meta.cpuModel}) shared by load generator, origin and proxy · ${SCENARIOS[scenario]?.connections(meta.opts)} connections · ${meta.durationSec} s per bar · load avg ${meta.loadavgAtStart[0]}`,
    )}</text>`,
  );
  const panels = [
    { field: 'rps', title: 'requests per second (higher is better)', axis: 'req/s', digits: 0 },
    { field: 'cpuUsPerReq', title: 'CPU time of the proxy process per request, µs (lower is better)', axis: 'CPU µs / request', digits: 1 },
  ];
  panels.forEach((p, pi) => {
    const y0 = top + pi * (panelH + gap);
    const vals = data.map((r) => r[p.field]).filter(Number.isFinite);
    const { top: axTop, step } = niceAxis(Math.max(...vals, 0));
    const yOf = (v) => y0 + panelH - (v / axTop) * panelH;
    out.push(`<text x="${left}" y="${y0 - 10}" font-size="14" font-weight="600" fill="#24292f">${esc(p.title)}</text>`);
    for (let v = 0; v <= axTop + step / 2; v += step) {
      const y = yOf(v);
      out.push(`<line x1="${left}" x2="${W - right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${v === 0 ? '#57606a' : '#d0d7de'}" stroke-width="1"/>`);
      out.push(`<text x="${left - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#57606a">${esc(fmt(v, step < 1 ? 1 : 0))}</text>`);
    }
    const cy = y0 + panelH / 2;
    out.push(`<text x="22" y="${cy}" text-anchor="middle" font-size="12" fill="#24292f" transform="rotate(-90 22 ${cy})">${esc(p.axis)}</text>`);
    data.forEach((r, i) => {
      const v = r[p.field];
      const cx = left + slot * (i + 0.5);
      if (Number.isFinite(v)) {
        const y = yOf(v);
        out.push(`<rect x="${(cx - barW / 2).toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${(y0 + panelH - y).toFixed(1)}" fill="${COLORS[r.group] ?? '#8c959f'}"><title>${esc(`${r.label}: ${fmt(v, p.digits)}`)}</title></rect>`);
        out.push(`<text x="${cx.toFixed(1)}" y="${(y - 5).toFixed(1)}" text-anchor="middle" font-size="12" font-weight="600" fill="#24292f">${esc(fmt(v, p.digits))}</text>`);
      }
      // target label under the bar, split over two lines at the first space after ~10 chars
      const words = r.label.split(' ');
      const lines = [];
      let cur = '';
      for (const w of words) {
        if (cur && (cur + ' ' + w).length > 14) {
          lines.push(cur);
          cur = w;
        } else cur = cur ? cur + ' ' + w : w;
      }
      if (cur) lines.push(cur);
      lines.slice(0, 3).forEach((l, li) => {
        out.push(`<text x="${cx.toFixed(1)}" y="${(y0 + panelH + 18 + li * 15).toFixed(1)}" text-anchor="middle" font-size="12" fill="#24292f">${esc(l)}</text>`);
      });
    });
  });
  // legend
  const legend = [
    ['corelb', 'corelb'],
    ['native', 'nginx / HAProxy'],
    ['node', 'Node.js proxies'],
    ['origin', 'origin alone (no proxy)'],
  ];
  let lx = left;
  const ly = H - 14;
  for (const [g, text] of legend) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[g]}"/>`);
    out.push(`<text x="${lx + 17}" y="${ly}" font-size="12" fill="#24292f">${esc(text)}</text>`);
    lx += 30 + text.length * 7;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
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
    const timer = setTimeout(() => child.kill('SIGKILL'), 150000); // 3 clients x (<= 10 s warm-up + <= 20 s + start-up)
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

/** Start `target`, probe it, measure one row of `sname`, stop it. Failures are recorded on the row. */
async function measureRow(target, sname, scenario, ctx, origin, opts) {
  const row = { name: target.name, label: target.label, group: target.group, scenario: sname, loadavg1: Number(os.loadavg()[0].toFixed(2)) };
  let started = false;
  try {
    await target.start(ctx);
    started = true;
    row.pid = target.pid;
    const p = await probe(target.url + (scenario.probePath ?? scenario.path), { method: scenario.probeMethod ?? scenario.method });
    if (!scenario.check(p)) throw new Error(`probe failed: status ${p.status}, body ${JSON.stringify(p.body.slice(0, 80))}`);
    const m = await measure(target, origin, scenario, sname, opts);
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
      peakRssMB: mb(m.peakRss),
      rssBeforeMB: mb(m.rssBefore),
      rssWindowStartMB: mb(m.rssWindowStart),
      rssWindowEndMB: mb(m.rssWindowEnd),
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      statusCodes: r.statusCodeStats,
      warmup: m.warm,
    });
    if (scenario.mib === 'down') row.mibps = mb(r.throughput.total) / r.duration;
    else if (scenario.mib === 'up') row.mibps = mb(requests * scenario.bodyBytes) / r.duration;
    if (scenario.mode === 'idle') {
      row.idle = r.idle;
      row.rssHeldMB = mb(m.rssHeld);
    }
    const logBytes = target.logBytes?.() ?? null;
    if (logBytes !== null) row.accessLogBytes = logBytes;
    process.stdout.write(
      `  ${target.name}: ${fmt(row.rps, 0)} req/s${row.mibps !== undefined ? `, ${fmt(row.mibps, 0)} MiB/s` : ''}, p50 ${row.p50} ms, p99 ${row.p99} ms, ` +
        `${fmt(row.cpuUsPerReq, 1)} µs CPU/req (target ${fmt(row.targetCpuCores, 2)} cores busy, load generator ${fmt(row.loadGenCpuCores, 2)}), ` +
        `peak RSS ${fmt(row.peakRssMB, 1)} MB, errors ${row.errors}, non-2xx ${row.non2xx}` +
        (row.idle
          ? `; idle: ${row.idle.opened}/${row.idle.requested} open in ${fmt(row.idle.openMs / 1000, 1)} s, RSS ${fmt(row.rssBeforeMB, 1)} -> ${fmt(row.rssHeldMB, 1)} MB held, ${row.idle.closedWhileIdle} closed while idle`
          : '') +
        (logBytes === null ? '' : `, access log ${fmt(mb(logBytes), 1)} MB so far`) +
        '\n',
    );
  } catch (err) {
    row.error = String(err && err.message ? err.message : err);
    process.stdout.write(`  ${target.name}: FAILED: ${row.error}\n`);
  } finally {
    if (started || target.child) {
      const exit = await target.stop();
      if (exit) {
        row.exit = exit;
        const ok = (exit.code === 0 || (exit.signal === 'SIGTERM' && target.group !== 'corelb')) && !exit.killed;
        if (!ok) {
          process.stdout.write(
            `  ${target.name} stopped with SIGTERM: exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''}${exit.killed ? ' (SIGKILLed after 10 s)' : ''}  <-- expected a graceful exit\n`,
          );
        }
      }
    }
  }
  return row;
}

/**
 * One target's rounds of a scenario as one row: the round with the median CPU µs/req (all its
 * figures from that one measurement), with every round's main figures kept in `rounds`.
 */
function medianRound(list) {
  const ok = list.filter((r) => !r.error).sort((a, b) => a.cpuUsPerReq - b.cpuUsPerReq);
  const pick = ok.length > 0 ? ok[Math.floor((ok.length - 1) / 2)] : list[0];
  if (list.length === 1) return pick;
  return {
    ...pick,
    rounds: list.map((r) => (r.error ? { error: r.error } : { rps: r.rps, cpuUsPerReq: r.cpuUsPerReq, p99: r.p99, mibps: r.mibps, loadavg1: r.loadavg1 })),
  };
}

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

/** The Markdown report of a run (from its meta and rows alone, so --render can redo it). */
function report(meta, rows, upstream) {
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
    `Load: ${meta.loadGenerator}. pipelining ${meta.pipelining}, ${meta.warmupSec} s warm-up then ${meta.durationSec} s measured per row. ` +
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
          `new-conn: a new TCP connection per request, \`Connection: close\` sent, the client closes its side once the response is complete (like wrk); latency includes the connect.`,
          `algorithms: one origin process listening on 3 ports = 3 backends; 64 distinct paths /k/0../k/63 cycled per connection (consistent-hash with hash_key: path).`,
          `Peers: nginx and HAProxy one worker/thread, keep-alive upstream (configs in native-free-bench/peers/); node-http-proxy with a keep-alive http.Agent; @fastify/http-proxy with undici (reply-from's default). ` +
            (skipped.length ? `Skipped: ${skipped.map((s) => `${s.name}${s.scenario ? ` in ${s.scenario}` : ''} (${s.reason})`).join('; ')}.` : 'None skipped.'),
        ]),
    `${meta.cpus} CPUs shared by load generator, proxy and origin (and, on this machine, other work: see the load average): compare ratios within this run, not absolute numbers across runs.`,
  ];
  const md = [
    `# corelb ${meta.accessLog ? 'access-log ' : ''}bench — ${meta.date}`,
    '',
    `node ${meta.node}, ${meta.platform}, ${meta.cpus} x ${meta.cpuModel}, load average at start ${meta.loadavgAtStart.join(' ')}, at end ${meta.loadavgAtEnd.join(' ')}`,
    '',
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

function writeResults(meta, rows, upstream, md, ratios, json) {
  const resultsDir = path.join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  if (meta.accessLog) {
    // its own files, no chart: the main table and chart (latest.*) are kept
    if (json) writeFileSync(path.join(resultsDir, 'access-log.json'), JSON.stringify({ meta, rows, ratios }, null, 2) + '\n');
    writeFileSync(path.join(resultsDir, 'access-log.md'), md + '\n');
    process.stdout.write(`\nwrote native-free-bench/results/${json ? 'access-log.json and ' : ''}access-log.md\n`);
    return;
  }
  if (json) writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify({ meta, rows, ratios, upstreamClient: upstream }, null, 2) + '\n');
  writeFileSync(path.join(resultsDir, 'latest.md'), md + '\n');
  const scenarios = meta.scenarioList;
  const chartScenario = scenarios.find((s) => s === 'get-2B') ?? scenarios.find((s) => MAIN.has(s)) ?? scenarios[0];
  writeFileSync(path.join(resultsDir, 'latest.svg'), svgChart(rows, chartScenario, meta));
  process.stdout.write(`\nwrote native-free-bench/results/${json ? 'latest.json, ' : ''}latest.md and latest.svg (chart: ${chartScenario})\n`);
}

/** --render FILE: redo latest.md and latest.svg (access-log.md for an --access-log run) from its saved JSON, without measuring. */
function render(file) {
  const { meta, rows, upstreamClient } = JSON.parse(readFileSync(file, 'utf8'));
  meta.scenarioList ??= Object.keys(meta.scenarios);
  const { md, ratios } = report(meta, rows, upstreamClient);
  process.stdout.write(`${md}\n`);
  writeResults(meta, rows, upstreamClient, md, ratios, false);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
