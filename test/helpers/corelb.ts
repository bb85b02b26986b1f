// Starts the real corelb CLI (`node dist/cli.js start --config FILE`) as a child process and
// gives tests its logs, its RSS and a way to stop it. That process is the supervisor; it forks the
// data plane, whose pid is the one of its latest `ready` log line. Every started supervisor and
// data plane is tracked and SIGKILLed by `stopAllCorelb()` (call it in afterAll) and on the test
// process's exit. With `log.file` in the config, the logs are in that file, not on stdout:
// startCorelb then waits for `ready` there, and tests read it with readLogFile.
import { spawn, type ChildProcess } from 'node:child_process';
import { killAll, onTestProcessExit } from './children.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { freePort } from './ports.js';
import { sleep } from './time.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

export type LogLine = Record<string, unknown> & { msg?: string; raw?: string };

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the process did not exit on `signal` within the grace period and was SIGKILLed. */
  killedAfterTimeout: boolean;
}

export interface Corelb {
  port: number;
  url: string;
  /** The supervisor's pid: the process to signal. */
  pid: number;
  proc: ChildProcess;
  configFile: string;
  logs(): LogLine[];
  stdout(): string;
  stderr(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Like waitForLog, but only lines at index >= `from` of logs() count. */
  waitForLogAfter(from: number, pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** The first `ready` line at index >= `from` of logs() (e.g. from = logs().length before a kill). */
  waitForReadyAfter(from: number, timeoutMs?: number): Promise<LogLine>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitResult>;
  exited(): Promise<ExitResult>;
  /** The data plane's pid: the pid of the most recent `ready` log line. */
  dataPlanePid(): number;
  /** RSS of the data plane (the supervisor is small and constant). */
  rssBytes(): number;
}

export interface StartOptions {
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** The cli.js to run (default: this checkout's dist/cli.js), e.g. an installed package's. */
  cli?: string;
}

// ---- config builder ---------------------------------------------------------------------------

export type BackendSpec = string | { url: string; weight?: number };
export interface HealthSpec {
  path?: string;
  interval?: string;
  timeout?: string;
  rise?: number;
  fall?: number;
  expect?: string | number;
}
export interface PoolSpec {
  algorithm?: 'round-robin' | 'least-connections' | 'random' | 'p2c' | 'ewma' | 'consistent-hash';
  backends: BackendSpec[];
  hash_key?: string;
  hash_balance_factor?: number;
  ewma_decay?: string;
  sticky?: { cookie: string; ttl?: string | number } | false;
  health?: HealthSpec;
  passive?: { failures?: number; window?: string; eject?: string } | false;
  slow_start?: string;
  retries?: number;
  retry_budget?: string;
}
export interface ConfigSpec {
  port?: number;
  host?: string;
  workers?: number | 'auto';
  log?: { level?: string; access?: boolean; file?: string };
  timeouts?: { connect?: string; response?: string; idle?: string; queue?: string; drain?: string; websocket_idle?: string | number };
  limits?: { max_body?: string | number; max_connections_per_backend?: number; websocket_message?: string };
  /** A pool is either a list of backend URLs or a full spec. */
  pools: Record<string, BackendSpec[] | PoolSpec>;
  routes?: { host?: string; path_prefix: string; pool: string }[];
  admin?: { host?: string; port: number; token?: string };
}

/** Builds the config object (YAML-ready) with test-friendly defaults. */
export function corelbConfig(spec: ConfigSpec): Record<string, unknown> {
  const pools: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(spec.pools)) {
    const ps: PoolSpec = Array.isArray(p) ? { backends: p } : p;
    const pool: Record<string, unknown> = { algorithm: ps.algorithm ?? 'round-robin', backends: ps.backends };
    const keys = ['health', 'passive', 'slow_start', 'retries', 'retry_budget', 'hash_key', 'hash_balance_factor', 'ewma_decay', 'sticky'] as const;
    for (const k of keys) if (ps[k] !== undefined) pool[k] = ps[k];
    pools[name] = pool;
  }
  const cfg: Record<string, unknown> = {
    listen: { host: spec.host ?? '127.0.0.1', port: spec.port ?? 0 },
    workers: spec.workers ?? 2,
    log: { level: spec.log?.level ?? 'info', access: spec.log?.access ?? false, ...(spec.log?.file !== undefined && { file: spec.log.file }) },
    timeouts: { connect: '2s', response: '30s', idle: '60s', ...spec.timeouts },
    limits: { max_body: '10mb', max_connections_per_backend: 0, ...spec.limits },
    pools,
  };
  if (spec.routes) cfg.routes = spec.routes;
  if (spec.admin) cfg.admin = spec.admin;
  return cfg;
}

export function toYaml(cfg: unknown): string {
  return YAML.stringify(cfg);
}

/** The lines of a log file (log.file), parsed like logs(); [] while the file does not exist. */
export function readLogFile(file: string): LogLine[] {
  if (!existsSync(file)) return [];
  const out: LogLine[] = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    try {
      const v = JSON.parse(line) as unknown;
      out.push(v !== null && typeof v === 'object' ? (v as LogLine) : { raw: line });
    } catch {
      out.push({ raw: line });
    }
  }
  return out;
}

/** Polls a log file until a line matches; rejects after timeoutMs or once `gone()` says so. */
export async function waitForLogFile(file: string, pred: (l: LogLine) => boolean, timeoutMs = 10_000, gone: () => boolean = () => false): Promise<LogLine> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = readLogFile(file).find(pred);
    if (found !== undefined) return found;
    if (gone()) throw new Error(`corelb exited before the awaited line in ${file}`);
    if (Date.now() > until) throw new Error(`no matching line in ${file} within ${timeoutMs} ms:\n${readLogFile(file).slice(-20).map((l) => JSON.stringify(l)).join('\n')}`);
    await sleep(25);
  }
}

// ---- process tracking -------------------------------------------------------------------------

const live = new Set<ChildProcess>();
/** Data plane pids seen in `ready` lines; they outlive a SIGKILLed supervisor for a moment. */
const dataPlanes = new Map<number, string>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  onTestProcessExit(() => {
    killAll(live);
    killDataPlanes();
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

/** SIGKILLs every corelb this test process started that is still alive. */
export async function stopAllCorelb(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const p of live) {
    waits.push(
      new Promise<void>((resolve) => {
        if (p.exitCode !== null || p.signalCode !== null) return resolve();
        p.once('exit', () => resolve());
        try {
          p.kill('SIGKILL');
        } catch {
          resolve();
        }
        setTimeout(resolve, 5000).unref();
      }),
    );
  }
  await Promise.all(waits);
  live.clear();
  // after the supervisors are gone, so that none restarts a data plane killed here
  killDataPlanes();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** True while `pid` runs (a zombie, exited but not yet reaped, counts as gone). */
export function processAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** SIGKILLs tracked data planes that still run this CLI (the check guards against pid reuse). */
function killDataPlanes(): void {
  for (const [pid, cli] of dataPlanes) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      /* gone */
    }
    if (cmdline.includes(cli) && processAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  dataPlanes.clear();
}

// ---- start ------------------------------------------------------------------------------------

/**
 * Starts corelb with a config given as YAML text (must carry listen.port) or as an object
 * (from `corelbConfig`; a missing/zero listen.port is replaced by a free port, in every listener
 * of a list).
 */
export async function startCorelb(config: string | Record<string, unknown>, opts: StartOptions = {}): Promise<Corelb> {
  installExitHook();
  let yamlText: string;
  let port: number;
  let host: string;
  /** log.file (resolved as corelb resolves it: from its working directory, REPO_ROOT) or null. */
  let logFile: string | null = null;
  if (typeof config === 'string') {
    yamlText = config;
    const parsed = YAML.parse(config) as { listen?: { host?: string; port?: number }; log?: { file?: unknown } };
    if (typeof parsed?.log?.file === 'string') logFile = path.resolve(REPO_ROOT, parsed.log.file);
    port = Number(parsed?.listen?.port);
    host = parsed?.listen?.host ?? '127.0.0.1';
    if (!Number.isInteger(port) || port <= 0) throw new Error('startCorelb: YAML text must set listen.port');
  } else {
    type Listener = { host?: string; port?: number };
    const cfg = structuredClone(config) as { listen?: Listener | Listener[]; log?: { file?: unknown } };
    if (typeof cfg.log?.file === 'string') logFile = path.resolve(REPO_ROOT, cfg.log.file);
    cfg.listen ??= {};
    // a list of listeners: each without a port gets a free one; `port` and `url` are the first's
    const all = Array.isArray(cfg.listen) ? cfg.listen : [cfg.listen];
    for (const l of all) {
      l.host ??= '127.0.0.1';
      if (!l.port) l.port = await freePort();
    }
    port = all[0]!.port!;
    host = all[0]!.host!;
    yamlText = toYaml(cfg);
  }

  const dir = mkdtempSync(path.join(tmpdir(), 'corelb-e2e-'));
  tempDirs.add(dir);
  const configFile = path.join(dir, 'corelb.yaml');
  writeFileSync(configFile, yamlText);

  const cli = opts.cli ?? CLI;
  const proc = spawn(process.execPath, [cli, 'start', '--config', configFile], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);

  const lines: LogLine[] = [];
  let stdoutText = '';
  let stderrText = '';
  let partial = '';
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };

  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    stdoutText += chunk;
    partial += chunk;
    let nl: number;
    let guard = 0;
    while ((nl = partial.indexOf('\n')) >= 0 && guard++ < 100_000) {
      const line = partial.slice(0, nl).trim();
      partial = partial.slice(nl + 1);
      if (line === '') continue;
      try {
        const v = JSON.parse(line) as unknown;
        const parsed = v !== null && typeof v === 'object' ? (v as LogLine) : { raw: line };
        if (parsed.msg === 'ready' && typeof parsed.pid === 'number') dataPlanes.set(parsed.pid, cli);
        lines.push(parsed);
      } catch {
        lines.push({ raw: line });
      }
    }
    notify();
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    stderrText += chunk;
  });

  let exitResult: ExitResult | null = null;
  let stdoutClosed = false;
  proc.stdout!.once('close', () => {
    stdoutClosed = true;
  });
  const exitPromise = new Promise<ExitResult>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      const result = { code, signal, killedAfterTimeout: false };
      // 'exit' can come before the last stdout chunk; give the pipe a moment (bounded: an
      // orphaned data plane may hold it open) so that the final log lines are in logs()
      const settle = () => {
        exitResult = result;
        notify();
        resolve(result);
      };
      if (stdoutClosed) return settle();
      const t = setTimeout(settle, 1000);
      proc.stdout!.once('close', () => {
        clearTimeout(t);
        settle();
      });
    });
  });

  const describeOutput = () =>
    `--- stdout ---\n${stdoutText.slice(-4000)}\n--- stderr ---\n${stderrText.slice(-4000)}`;

  function waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    return waitForLogAfter(0, pred, timeoutMs);
  }

  function waitForLogAfter(from: number, pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      let checked = from;
      const check = (): boolean => {
        for (; checked < lines.length; checked++) {
          const l = lines[checked]!;
          if (pred(l)) {
            cleanup();
            resolve(l);
            return true;
          }
        }
        if (exitResult) {
          cleanup();
          reject(new Error(`corelb exited (${JSON.stringify(exitResult)}) before the awaited log line\n${describeOutput()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching corelb log line within ${timeoutMs} ms\n${describeOutput()}`));
      }, timeoutMs);
      const listener = () => void check();
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(listener);
      };
      listeners.add(listener);
      check();
    });
  }

  try {
    const isReady = (l: LogLine): boolean => l.msg === 'ready';
    if (logFile === null) await waitForLog(isReady, opts.readyTimeoutMs ?? 15_000);
    else {
      const ready = await waitForLogFile(logFile, isReady, opts.readyTimeoutMs ?? 15_000, () => exitResult !== null);
      if (typeof ready.pid === 'number') dataPlanes.set(ready.pid, cli);
    }
  } catch (err) {
    if (!exitResult) proc.kill('SIGKILL');
    throw err;
  }

  async function stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<ExitResult> {
    if (exitResult) return exitResult;
    proc.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), graceMs);
    });
    const res = await Promise.race([exitPromise, timedOut]);
    clearTimeout(timer);
    if (res === 'timeout') {
      proc.kill('SIGKILL');
      const r = await exitPromise;
      return { ...r, killedAfterTimeout: true };
    }
    return res;
  }

  function dataPlanePid(): number {
    const all = logFile === null ? lines : readLogFile(logFile);
    for (let i = all.length - 1; i >= 0; i--) {
      const l = all[i]!;
      if (l.msg === 'ready' && typeof l.pid === 'number') return l.pid;
    }
    throw new Error('dataPlanePid: no ready line yet');
  }

  function rssBytes(): number {
    const status = readFileSync(`/proc/${dataPlanePid()}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!m) throw new Error('VmRSS not found');
    return Number(m[1]) * 1024;
  }

  return {
    port,
    url: `http://${host}:${port}`,
    pid: proc.pid!,
    proc,
    configFile,
    logs: () => lines,
    stdout: () => stdoutText,
    stderr: () => stderrText,
    waitForLog,
    waitForLogAfter,
    waitForReadyAfter: (from, timeoutMs = 15_000) => waitForLogAfter(from, (l) => l.msg === 'ready', timeoutMs),
    stop,
    exited: () => exitPromise,
    dataPlanePid,
    rssBytes,
  };
}

/** Samples a process's RSS every `everyMs` until stopped; returns the max seen. */
export function sampleRss(get: () => number, everyMs = 50): { stop(): number; max(): number } {
  let max = 0;
  const take = () => {
    try {
      max = Math.max(max, get());
    } catch {
      /* process gone */
    }
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(t);
      take();
      return max;
    },
    max: () => max,
  };
}
