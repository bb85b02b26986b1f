// Backends in their own processes (test/helpers/origin-child.mjs), so that a test can SIGKILL one
// and start it again on the same port. Each answers 200 with `x-backend: <id>` and /healthz 200;
// its mode (ok, hang, error500, delay, reset) switches at run time over IPC. Every started child
// is tracked: `stopAllOriginProcesses()` (call it in afterAll) and the test process's exit kill
// whatever is left.
import { fork, type ChildProcess } from 'node:child_process';
import { killAll, killQuietly, onTestProcessExit } from './children.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'origin-child.mjs');

export type OriginMode = 'ok' | 'hang' | 'error500' | 'delay' | 'reset';

export interface OriginStats {
  /** Requests other than /healthz. */
  requests: number;
  /** /healthz requests. */
  healthz: number;
  /** Requests other than /healthz, by method. */
  byMethod: Record<string, number>;
}

export interface OriginProcess {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  /** Pid of the current child (changes on restart). */
  pid(): number;
  /** Switches the mode; resolves once the child has applied it. `delayMs` is for 'delay'. */
  setMode(mode: OriginMode, delayMs?: number): Promise<void>;
  /** Counters of the current child (reset by restart). */
  stats(): Promise<OriginStats>;
  /** SIGKILL; resolves once the child has exited. */
  kill(): Promise<void>;
  /** Starts a new child on the same port (retrying the bind for up to 5 s), in mode ok. */
  restart(): Promise<void>;
  /** Graceful: closes the server and every connection, waits for the exit. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  onTestProcessExit(() => killAll(live));
}

function gone(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

/** Resolves when `p` has exited; SIGKILLs it if it has not within `graceMs`. */
function waitExit(p: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (gone(p)) return resolve();
    const timer = setTimeout(() => killQuietly(p), graceMs);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** SIGKILLs every origin process still alive and waits for them. */
export async function stopAllOriginProcesses(): Promise<void> {
  const all = [...live];
  killAll(all);
  await Promise.all(all.map((p) => waitExit(p, 5000)));
  live.clear();
}

type ChildMessage = { type: 'listening'; port: number } | { type: 'error'; message: string } | { type: 'ack'; seq: number; stats?: OriginStats };

async function spawnChild(id: string, port: number, timeoutMs: number): Promise<{ proc: ChildProcess; port: number }> {
  installExitHook();
  const proc = fork(CHILD, [id, String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  const bound = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`origin ${id}: not listening within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (m: ChildMessage) => {
      if (m.type === 'listening') done(() => resolve(m.port));
      else if (m.type === 'error') fail(new Error(`origin ${id}: ${m.message}`));
    };
    const onExit = (code: number | null, signal: string | null) => fail(new Error(`origin ${id} exited (${code ?? signal}) before listening`));
    const done = (f: () => void) => {
      clearTimeout(timer);
      proc.off('message', onMsg);
      proc.off('exit', onExit);
      f();
    };
    const fail = (e: Error) =>
      done(() => {
        proc.kill('SIGKILL');
        reject(e);
      });
    proc.on('message', onMsg);
    proc.once('exit', onExit);
  });
  return { proc, port: bound };
}

/** Starts a backend process on `port` (0 or absent: any free port). */
export async function startOriginProcess(opts: { id: string; port?: number; mode?: OriginMode; delayMs?: number }): Promise<OriginProcess> {
  const { id } = opts;
  let { proc, port } = await spawnChild(id, opts.port ?? 0, 10_000);
  let seq = 0;

  function command<T>(msg: Record<string, unknown>, pick: (m: ChildMessage & { type: 'ack' }) => T): Promise<T> {
    const p = proc;
    const mySeq = ++seq;
    return new Promise<T>((resolve, reject) => {
      if (gone(p) || !p.connected) return reject(new Error(`origin ${id} is not running`));
      const timer = setTimeout(() => finish(() => reject(new Error(`origin ${id}: no answer to ${String(msg.type)} within 5 s`))), 5000);
      const onMsg = (m: ChildMessage) => {
        if (m.type === 'ack' && m.seq === mySeq) finish(() => resolve(pick(m)));
      };
      const onExit = () => finish(() => reject(new Error(`origin ${id} exited during ${String(msg.type)}`)));
      const finish = (f: () => void) => {
        clearTimeout(timer);
        p.off('message', onMsg);
        p.off('exit', onExit);
        f();
      };
      p.on('message', onMsg);
      p.once('exit', onExit);
      p.send({ ...msg, seq: mySeq });
    });
  }

  const o: OriginProcess = {
    id,
    get port() {
      return port;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    pid: () => proc.pid!,
    setMode: (mode, delayMs = 0) => command({ type: 'mode', mode, delayMs }, () => undefined),
    stats: () => command({ type: 'stats' }, (m) => m.stats!),
    async kill() {
      if (gone(proc)) return;
      proc.kill('SIGKILL');
      await waitExit(proc, 5000);
    },
    async restart() {
      if (!gone(proc)) await o.kill();
      const next = await spawnChild(id, port, 10_000);
      proc = next.proc;
      port = next.port;
    },
    async stop() {
      if (gone(proc)) return;
      if (proc.connected) proc.send({ type: 'stop' });
      else proc.kill('SIGKILL');
      await waitExit(proc, 5000);
    },
  };
  if (opts.mode !== undefined && opts.mode !== 'ok') await o.setMode(opts.mode, opts.delayMs);
  return o;
}
