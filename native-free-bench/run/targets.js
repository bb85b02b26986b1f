// Owns the targets of run.js: how each proxy (corelb, nginx, HAProxy, the Node proxies) and the origin alone is started, found ready and stopped.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BENCH_DIR,
  findExecutable,
  freePort,
  openFilesLimit,
  resolvePackage,
  spawnUntilFileReady,
  spawnUntilListening,
  spawnUntilReady,
  stopChild,
} from '../lib.js';
import { ALGORITHMS, MAIN, SCENARIOS } from './scenarios.js';

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
      this.label = `origin alone (${ctx.origin.label})`;
    },
    async stop() {
      return null; // the origin outlives every target
    },
  };
}

/** Stops a target's child process (SIGTERM, then SIGKILL after 10 s) and removes its temp dir. */
export async function stopTarget(t) {
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
export function corelbTarget({ workers, dist, algorithm = 'round-robin', threeBackends = false, access = 'off', name, label, runs }) {
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
export function packageVersion(specifier) {
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

export function fillTemplate(file, values) {
  let s = readFileSync(path.join(BENCH_DIR, 'peers', file), 'utf8');
  for (const [k, v] of Object.entries(values)) s = s.split(`{{${k}}}`).join(v);
  return s;
}

/**
 * nginx or HAProxy from peers/<template>, when the binary is on PATH (or in /usr/sbin).
 * `workers: 2` (nginx only): worker_processes 2, the control for corelb's workers=2 / workers=1
 * on this machine, run on the small-request scenarios only.
 */
export function nativePeerTarget(kind, workers = 1) {
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
export function versionText(bin) {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

const ACCESS_LABELS = { off: 'access log off', file: 'access log to a file', stdout: 'access log to stdout (pipe)' };

export function buildTargets(opts) {
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
