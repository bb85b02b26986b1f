// Helpers shared by the bench scripts: free ports, child processes, /proc sampling.
// Linux only (/proc). Plain ESM, no dependencies.

import { spawn, execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');

/** Bind 127.0.0.1:0, read the port the kernel gave, close. (Racy by nature, fine on loopback.) */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A corelb config for the bench scripts: one pool `web` of `backends`, access log off, the
 * bench's timeouts; `extra` top-level lines go before the pools.
 */
export function corelbYaml({ port, workers = 1, backends, extra = [] }) {
  return [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `workers: ${workers}`,
    'log: { level: info, access: false }',
    'timeouts: { connect: 2s, response: 30s, idle: 60s }',
    ...extra,
    'pools:',
    '  web:',
    '    backends:',
    ...backends.map((b) => `      - ${b}`),
    '',
  ].join('\n');
}

/**
 * Walk command-line flags: `handle(flag, value, positive)` once per flag, where value() takes the
 * flag's value (an error when it is missing) and positive() takes it as a number > 0.
 */
export function eachFlag(argv, handle) {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positive = () => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: not a positive number: ${v}`);
      return n;
    };
    handle(flag, value, positive);
  }
}

let clkTck = 0;
/** Clock ticks per second for /proc/PID/stat utime/stime (almost always 100). */
export function clockTicks() {
  if (clkTck) return clkTck;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** PIDs of `pid` and all its descendants (via /proc/PID/task/TID/children). */
export function processTree(pid) {
  const out = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    let tids;
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let kids = '';
      try {
        kids = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(' ')) if (k.trim()) stack.push(Number(k));
    }
  }
  return out;
}

/**
 * CPU time (µs) of one process, all threads included: /proc/PID/stat fields 14 (utime) and
 * 15 (stime), in clock ticks. Returns NaN if the process is gone.
 */
export function procCpuMicros(pid) {
  let s;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return NaN;
  }
  // comm (field 2) may contain spaces and parens: split after the LAST ')'.
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  return ((utime + stime) * 1e6) / clockTicks();
}

/**
 * CPU time (µs) of this process's children that have exited and been reaped (wrk after its run):
 * /proc/self/stat fields 16 (cutime) and 17 (cstime). A running child is not in it.
 */
export function reapedChildrenCpuMicros() {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[16 - 3]) + Number(rest[17 - 3])) * 1e6) / clockTicks();
}

/** Sum of procCpuMicros over a process and its descendants (children that exited are lost). */
export function treeCpuMicros(pid) {
  let sum = 0;
  for (const p of processTree(pid)) {
    const v = procCpuMicros(p);
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

/** VmRSS in bytes of one process (/proc/PID/status), NaN if gone. */
export function procRssBytes(pid) {
  let s;
  try {
    s = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return NaN;
  }
  const i = s.indexOf('VmRSS:');
  if (i < 0) return NaN;
  return Number.parseInt(s.slice(i + 6), 10) * 1024; // "VmRSS:\t  12345 kB"
}

export function treeRssBytes(pid) {
  let sum = 0;
  for (const p of processTree(pid)) {
    const v = procRssBytes(p);
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

/** Samples the RSS of a process tree every `everyMs` and keeps the peak. */
export class RssSampler {
  constructor(pid, everyMs = 100) {
    this.pid = pid;
    this.peak = 0;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }
  sample() {
    const v = treeRssBytes(this.pid);
    if (Number.isFinite(v) && v > this.peak) this.peak = v;
  }
  stop() {
    this.sample();
    clearInterval(this.timer);
    return this.peak;
  }
}

/** Every server child spawned through this module and not yet exited (a target still starting included). */
const spawned = new Set();
function track(child) {
  spawned.add(child);
  child.once('exit', () => spawned.delete(child));
  return child;
}

/** An interrupt: stop every server child still running (SIGTERM, SIGKILL after `graceMs`), a target that was starting too. */
export async function stopSpawned(graceMs = 10000) {
  await Promise.all([...spawned].map((c) => stopChild(c, graceMs)));
}

/**
 * Spawn a child and wait until `isReady(line)` is true for one of its stdout lines.
 * Returns { child, output } where output holds the last lines seen (for error messages).
 * Rejects on exit before ready or after `timeoutMs`.
 */
export function spawnUntilReady(cmd, args, { isReady, timeoutMs = 20000, cwd = REPO_ROOT, env = process.env, label = cmd } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    const tail = [];
    const remember = (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
    };
    let ready = false;
    let buf = '';
    const fail = (msg) => {
      if (ready) return;
      ready = true;
      clearTimeout(timer);
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      reject(new Error(`${label}: ${msg}\n--- last output ---\n${tail.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      if (ready) return; // past ready the caller drains stdout (an access log can be busy): no line splitting here
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        remember(line);
        if (!ready && isReady(line)) {
          ready = true;
          clearTimeout(timer);
          resolve({ child, output: tail });
        }
      }
      if (buf.length > 65536) buf = buf.slice(-65536);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      for (const line of String(d).split('\n')) if (line) remember(`[stderr] ${line}`);
    });
    child.on('error', (err) => fail(`spawn failed: ${err.message}`));
    child.on('exit', (code, sig) => fail(`exited before ready (code ${code}, signal ${sig})`));
  });
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves { code, signal, killed }. */
export function stopChild(child, graceMs = 10000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode, killed: false });
      return;
    }
    let killed = false;
    const t = setTimeout(() => {
      killed = true;
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, killed });
    });
    child.kill('SIGTERM');
  });
}

/** One request on a fresh connection (Connection: close): { status, body }. https: any certificate. */
export function probe(url, { method = 'GET', timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.request(url, { method, agent: false, headers: { connection: 'close' }, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('latin1') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`probe ${url}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Start native-free-bench/origin.js, one process listening on `nPorts` free ports.
 * Returns { child, pid, port, url, ports, urls, stop }: port/url are the first port's.
 */
export async function startOrigin(nPorts = 1) {
  const ports = [];
  while (ports.length < nPorts) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const { child } = await spawnUntilReady(process.execPath, [path.join(BENCH_DIR, 'origin.js'), ports.join(',')], {
    isReady: (l) => l.trim() === 'ready',
    timeoutMs: 10000,
    label: 'origin',
  });
  child.stdout.resume();
  child.stderr.resume();
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  return {
    child,
    pid: child.pid,
    port: ports[0],
    url: urls[0],
    ports,
    urls,
    stop: () => stopChild(child, 3000),
  };
}

/**
 * Spawn a server and poll `isReadyNow()` (sync or async) until it says true. Rejects (after
 * SIGKILL) on exit or after `timeoutMs`, with `describe()`'s view of the output. `tail` keeps the
 * last 40 lines of stderr (and of stdout when `keepStdout`). Returns { child, output: tail }.
 */
function spawnAndPoll(cmd, args, { cwd, env, label, timeoutMs, intervalMs, keepStdout, isReadyNow, notReady, describe }) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    const tail = [];
    const remember = (prefix) => (d) => {
      for (const line of String(d).split('\n')) {
        if (!line) continue;
        tail.push(prefix + line);
        if (tail.length > 40) tail.shift();
      }
    };
    if (keepStdout) child.stdout.on('data', remember(''));
    child.stderr.on('data', remember('[stderr] '));
    let done = false;
    const started = Date.now();
    const fail = (msg) => {
      if (done) return;
      done = true;
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      reject(new Error(`${label}: ${msg}\n${describe(tail)}`));
    };
    child.on('error', (err) => fail(`spawn failed: ${err.message}`));
    child.on('exit', (code, sig) => fail(`exited before ready (code ${code}, signal ${sig})`));
    const poll = async () => {
      if (done) return;
      let ready = false;
      try {
        ready = await isReadyNow();
      } catch {
        // not yet readable (a file being created): poll again
      }
      if (done) return;
      if (ready) {
        done = true;
        resolve({ child, output: tail });
      } else if (Date.now() - started > timeoutMs) fail(`${notReady} after ${timeoutMs} ms`);
      else setTimeout(poll, intervalMs);
    };
    setTimeout(poll, 50);
  });
}

/**
 * Spawn a server that prints no "ready" line (nginx, HAProxy) and wait until `url` answers a
 * probe with any HTTP status. Rejects (after SIGKILL) on exit or after `timeoutMs`.
 * Returns { child, output } like spawnUntilReady; stdout/stderr keep being drained into `output`.
 */
export function spawnUntilListening(cmd, args, { url, timeoutMs = 15000, cwd = REPO_ROOT, env = process.env, label = cmd } = {}) {
  return spawnAndPoll(cmd, args, {
    cwd,
    env,
    label,
    timeoutMs,
    intervalMs: 100,
    keepStdout: true,
    isReadyNow: () => probe(url, { timeoutMs: 1000 }).then(() => true, () => false),
    notReady: `not listening on ${url}`,
    describe: (tail) => `--- last output ---\n${tail.join('\n')}`,
  });
}

/**
 * Spawn a server that logs to a file, not stdout (corelb with `log.file`), and wait until a line
 * of `file` satisfies `isReady` (polled every 50 ms). Rejects (after SIGKILL) on exit or after
 * `timeoutMs`. Returns { child, output } like spawnUntilReady; stdout is left to the caller.
 */
export function spawnUntilFileReady(cmd, args, { file, isReady, timeoutMs = 20000, cwd = REPO_ROOT, env = process.env, label = cmd } = {}) {
  return spawnAndPoll(cmd, args, {
    cwd,
    env,
    label,
    timeoutMs,
    intervalMs: 50,
    keepStdout: false,
    isReadyNow: () => existsSync(file) && readFileSync(file, 'utf8').split('\n').some(isReady),
    notReady: `no ready line in ${file}`,
    describe: (tail) => {
      const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-20) : [`(${file} not created)`];
      return `--- last lines of ${file} ---\n${lines.join('\n')}\n${tail.join('\n')}`;
    },
  });
}

/**
 * Full path of an executable found on PATH or in `extraDirs` (nginx and HAProxy live in
 * /usr/sbin on Debian, which a non-root PATH often lacks), or null.
 */
export function findExecutable(name, extraDirs = ['/usr/sbin', '/usr/local/sbin', '/sbin']) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...extraDirs];
  for (const d of dirs) {
    const full = path.join(d, name);
    try {
      accessSync(full, fsConstants.X_OK);
      return full;
    } catch {
      /* next */
    }
  }
  return null;
}

const requireHere = createRequire(import.meta.url);

/**
 * Where a package would be loaded from (bare specifier, normal Node resolution: the project's
 * node_modules, then NODE_PATH), or null when it is not installed.
 */
export function resolvePackage(specifier) {
  try {
    return requireHere.resolve(specifier);
  } catch {
    return null;
  }
}

/** The soft "Max open files" limit of this process (children inherit it), or NaN. */
export function openFilesLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const v = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return v === 'unlimited' ? Infinity : Number(v);
  } catch {
    return NaN;
  }
}

export function fmt(n, digits = 1) {
  if (n === null || n === undefined || !Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
