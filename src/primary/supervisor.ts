// Owns the process the operator starts with `corelb start`: it refuses a listen address another
// process holds, forks the data plane (this same CLI with CORELB_DATA_PLANE=1) and hands it the last
// configuration that loaded successfully, passes signals on to it, restarts it with back-off when
// it dies (with that configuration, not a broken file on disk), and exits when it is told to stop. It holds no sockets and runs no worker threads, so nothing it
// does can abort it the way a dying uWS worker aborts its process (see /work/shared/DESIGN.md).

import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { formatProblem, loadConfigFile } from '../config/index.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../log.js';

const CLI_PATH = fileURLToPath(new URL('../cli.js', import.meta.url));

export const BACKOFF_FIRST_MS = 100;
export const BACKOFF_MAX_MS = 10_000;
/** A data plane that stayed ready this long was healthy: the next crash restarts it quickly again. */
export const BACKOFF_RESET_AFTER_MS = 30_000;
/** Time a data plane gets beyond its own drain timeout before the supervisor SIGKILLs it. */
const STOP_GRACE_EXTRA_MS = 5_000;

/** Passed on unchanged; the data plane reloads (SIGHUP) or reopens its log files (SIGUSR1). */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'];
/** Passed on and make the supervisor exit once the data plane has exited. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT'];

/**
 * V8 flags of the data plane, before the supervisor's own (an operator's node flags come last and
 * win). Each was kept for what a side-by-side A/B showed (native-free-bench/side-by-side.js
 * --b-node, CPU per tiny GET under wrk):
 * - one GC thread per isolate: a worker per core leaves no idle core for V8's GC helper threads,
 *   and waking them (and freeing ArrayBuffers on them) cost about 4%;
 * - a young generation of 1 MiB (V8's least) instead of one that grows to 16: a request's garbage
 *   (a few KiB) dies young either way, and the allocation front then stays in the core's cache;
 *   about 4% (0.961x, and 1.043x with the sides swapped; 2 MiB measured 1.02x of 1 MiB).
 */
const DATA_PLANE_NODE_FLAGS = ['--single-threaded-gc', '--max-semi-space-size=1'];

/** Set on the data plane it forks: its configuration comes over the IPC channel, not from the file. */
export const CONFIG_FROM_SUPERVISOR = 'CORELB_CONFIG_FROM_SUPERVISOR';

/**
 * Over the IPC channel: the data plane says `ready`, and `config` with the source of every
 * configuration a reload accepted; the supervisor sends `config` once, right after the fork.
 */
export type DataPlaneMessage = { type: 'ready' } | { type: 'config'; text: string };

function messageType(m: unknown): unknown {
  return typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
}

export function isReadyMessage(m: unknown): boolean {
  return messageType(m) === 'ready';
}

/** The configuration source of a `config` message, or null when `m` is not one. */
export function configText(m: unknown): string | null {
  if (messageType(m) !== 'config') return null;
  const text = (m as { text?: unknown }).text;
  return typeof text === 'string' ? text : null;
}

/**
 * Resolves when nothing holds any listener's `host:port`; rejects with `address HOST:PORT is already in use`
 * otherwise. The workers listen with SO_REUSEPORT, so a second corelb would share the port with
 * the first and the kernel would split the traffic between them: a socket bound without it, as
 * here, fails on a port any process holds, another corelb included.
 */
export async function assertAddressesFree(listeners: readonly { readonly host: string; readonly port: number }[]): Promise<void> {
  for (const l of listeners) await assertAddressFree(l.host, l.port);
}

/** One address of assertAddressesFree. */
export function assertAddressFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      reject(new Error(err.code === 'EADDRINUSE' ? `address ${where} is already in use` : `cannot listen on ${where}: ${err.message}`));
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/**
 * Runs the supervisor for a config file that has already been validated. Never returns. It logs
 * where the data plane does (log.file, like nginx's master and its error log), so a rotation
 * reopens its file too.
 */
export function runSupervisor(file: string, config: Config, text: string): void {
  const output = createLogger(config.log.level, config.log.file);
  const log = output.log.child({ role: 'supervisor' });
  new Supervisor(file, text, config.timeouts.drainMs + STOP_GRACE_EXTRA_MS, log, output.reopen).start();
}

class Supervisor {
  private readonly file: string;
  /** The source of the last configuration that loaded: at start, or the last accepted reload. */
  private lastGood: string;
  private readonly stopGraceMs: number;
  private readonly log: Logger;
  private readonly reopenLog: () => Promise<void>;
  private child: ChildProcess | null = null;
  /** Set once any data plane has said ready: only then is a crash worth a restart. */
  private everReady = false;
  private readyAt = 0;
  private stopping = false;
  private exiting = false;
  private backoffMs = BACKOFF_FIRST_MS;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(file: string, text: string, stopGraceMs: number, log: Logger, reopenLog: () => Promise<void>) {
    this.file = file;
    this.lastGood = text;
    this.stopGraceMs = stopGraceMs;
    this.log = log;
    this.reopenLog = reopenLog;
  }

  start(): void {
    for (const s of FORWARDED_SIGNALS) process.on(s, () => this.forward(s));
    for (const s of STOP_SIGNALS) process.on(s, () => this.onStopSignal(s));
    process.on('uncaughtException', (err) => this.crash(err));
    process.on('unhandledRejection', (err) => this.crash(err));
    this.spawn();
  }

  private spawn(): void {
    this.restartTimer = null;
    let child: ChildProcess;
    try {
      child = fork(CLI_PATH, ['start', '--config', this.file], {
        execArgv: [...DATA_PLANE_NODE_FLAGS, ...process.execArgv],
        env: { ...process.env, CORELB_DATA_PLANE: '1', [CONFIG_FROM_SUPERVISOR]: '1' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      // like nginx's master: the configuration held, not whatever the file says now
      child.send({ type: 'config', text: this.lastGood } satisfies DataPlaneMessage, (err) => {
        if (err) this.log.error({ err, dataPlanePid: child.pid }, 'cannot hand the configuration to the data plane');
      });
    } catch (err) {
      this.log.error({ err }, 'cannot start the data plane');
      this.onChildGone(null, null, null);
      return;
    }
    this.child = child;
    // `dataPlanePid`, not `pid`: pino already writes the supervisor's own pid in every line
    this.log.info({ dataPlanePid: child.pid }, 'data plane started');
    let gone = false;
    const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (gone) return;
      gone = true;
      this.onChildGone(child, code, signal);
    };
    child.on('message', (m: unknown) => {
      if (isReadyMessage(m)) this.onReady();
      const text = configText(m);
      if (text !== null) this.lastGood = text;
    });
    child.on('exit', settle);
    // errors on the IPC channel (EPIPE) or a failed spawn; a spawn that failed emits no 'exit'
    child.on('error', (err) => {
      this.log.error({ err, dataPlanePid: child.pid }, 'data plane process error');
      if (child.pid === undefined) settle(null, null);
    });
  }

  private onReady(): void {
    this.everReady = true;
    this.readyAt = Date.now();
  }

  private onChildGone(child: ChildProcess | null, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== null && this.child !== child) return;
    this.child = null;
    const upMs = this.readyAt === 0 ? 0 : Date.now() - this.readyAt;
    this.readyAt = 0;
    this.log.info({ dataPlanePid: child?.pid, code, signal }, 'data plane exited');
    if (this.stopping) return this.exit(exitCodeOf(code, signal));
    if (code === 0 && signal === null) {
      this.log.info('data plane stopped by itself: exiting');
      return this.exit(0);
    }
    if (!this.everReady) {
      this.log.error({ code, signal }, 'data plane failed to start: not restarting');
      return this.exit(1);
    }
    this.scheduleRestart(upMs);
  }

  private scheduleRestart(upMs: number): void {
    if (upMs >= BACKOFF_RESET_AFTER_MS) this.backoffMs = BACKOFF_FIRST_MS;
    const inMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.restarts++;
    const disk = loadConfigFile(this.file);
    if (disk.ok) {
      this.log.warn({ inMs, restarts: this.restarts }, 'restarting data plane');
    } else {
      this.log.warn(
        { inMs, restarts: this.restarts, file: this.file, problems: disk.problems.map(formatProblem) },
        'restarting data plane with the last good configuration: the file on disk is invalid',
      );
    }
    this.restartTimer = setTimeout(() => this.spawn(), inMs);
  }

  private forward(signal: NodeJS.Signals): void {
    if (signal === 'SIGUSR1') {
      this.reopenLog().catch((err: unknown) => this.log.error({ err }, 'cannot reopen the log file: still writing to the old one'));
    }
    if (this.child === null) {
      this.log.info({ signal }, 'no data plane running: signal not passed on');
      return;
    }
    this.signalChild(signal);
  }

  private onStopSignal(signal: NodeJS.Signals): void {
    if (this.stopping) {
      this.signalChild(signal);
      return;
    }
    this.stopping = true;
    this.log.info({ signal }, 'stopping');
    if (this.child === null) {
      // between a crash and its restart: nothing to drain
      if (this.restartTimer !== null) clearTimeout(this.restartTimer);
      return this.exit(0);
    }
    this.signalChild(signal);
    this.killAfter(this.stopGraceMs, 'data plane did not stop in time: killed');
  }

  /** An exception in the supervisor itself: stop the data plane (bounded) and exit 1. */
  private crash(err: unknown): void {
    this.log.fatal({ err }, 'uncaught exception in the supervisor: stopping');
    if (this.stopping) return;
    this.stopping = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    if (this.child === null) return this.exit(1);
    this.signalChild('SIGTERM');
    this.killAfter(this.stopGraceMs, 'data plane did not stop in time: killed', 1);
  }

  /** SIGKILLs the data plane and exits `code` unless it has exited within `ms`. */
  private killAfter(ms: number, msg: string, code = 1): void {
    const child = this.child;
    setTimeout(() => {
      if (this.exiting || this.child !== child || child === null) return;
      this.log.error({ dataPlanePid: child.pid, afterMs: ms }, msg);
      this.signalChild('SIGKILL');
      this.exit(code);
    }, ms);
  }

  private signalChild(signal: NodeJS.Signals): void {
    try {
      this.child?.kill(signal);
    } catch (err) {
      // ESRCH: it exited and its 'exit' event is on its way
      this.log.warn({ err, signal }, 'cannot signal the data plane');
    }
  }

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.log.info({ code }, 'supervisor exiting');
    this.log.flush(() => process.exit(code));
  }
}

/** The child's exit code; killed by a signal: 128 + its number, as a shell reports it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal === null) return 1;
  return 128 + (constants.signals[signal] ?? 0);
}
