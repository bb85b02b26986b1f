// Bounded load from a second process (test/helpers/load-child.mjs): `concurrency` loops of one
// request after another, stopped by a request count, a duration, or `stop()`. The result counts
// statuses, errors by code, answers per `x-backend`, and a timeline of 100 ms buckets (by
// completion time); every failure is recorded with its time and kind so a test can print it.
import { fork, type ChildProcess } from 'node:child_process';
import { killAll, onTestProcessExit } from './children.js';
import { sleep } from './time.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-child.mjs');
export const BUCKET_MS = 100;

export interface LoadOptions {
  url: string;
  /** Parallel request loops, and maxSockets of the keep-alive agent. Default 8. */
  concurrency?: number;
  method?: string;
  /** Default true: node:http Agent keepAlive. */
  keepAlive?: boolean;
  /** Requests started in all (a bound, not a target). */
  maxRequests: number;
  /** Stop starting requests after this long. */
  maxDurationMs: number;
  /** Request body (sent with Content-Length). */
  body?: string;
  /** Hang guard per request: destroyed and counted as TIMEOUT after this long. Default 10 s. */
  requestTimeoutMs?: number;
  /** A loop pauses this long after a failed request (default 0). */
  errorPauseMs?: number;
}

export interface Bucket {
  /** Start of the bucket, ms since `startedAt`. */
  t: number;
  total: number;
  ok: number;
  failed: number;
  /** Responses with `Connection: close`. */
  close: number;
  byBackend: Record<string, number>;
}

export interface Failure {
  /** Completion, epoch ms. */
  at: number;
  /** Completion, ms since startedAt. */
  t: number;
  /** Start, ms since startedAt. */
  startT: number;
  durationMs: number;
  /** 'status': a response that was not 2xx; 'error': no (complete) response. */
  kind: 'status' | 'error';
  status?: number;
  /** ECONNREFUSED, ECONNRESET, TIMEOUT, INCOMPLETE, ABORTED, ... */
  code?: string;
  backend?: string;
  requestId?: string;
  reusedSocket?: boolean;
}

export interface LoadResult {
  /** Epoch ms (Date.now() in the load process) when the first request was started. */
  startedAt: number;
  wallMs: number;
  total: number;
  /** 2xx with a complete body. */
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  byBackend: Record<string, number>;
  connectionClose: number;
  /** Epoch ms of the last 2xx completion (0: none). */
  lastOkAt: number;
  timeline: Bucket[];
  failures: Failure[];
  failuresDropped: number;
  stoppedBy: 'count' | 'duration' | 'stop';
}

export interface Snapshot {
  elapsedMs: number;
  total: number;
  ok: number;
  failed: number;
  byBackend: Record<string, number>;
}

export interface Load {
  /** Epoch ms of the load process's start (the timeline's zero). */
  readonly startedAt: number;
  /** Counts so far. */
  snapshot(): Promise<Snapshot>;
  /** Resolves when `pred` holds for a snapshot (polled every 50 ms); rejects after timeoutMs. */
  waitFor(pred: (s: Snapshot) => boolean, timeoutMs: number, what: string): Promise<Snapshot>;
  /** Asks the loops to stop starting requests; resolves with the result. */
  stop(): Promise<LoadResult>;
  /** The result once the load has ended by itself (count or duration) or was stopped. */
  readonly done: Promise<LoadResult>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** SIGKILLs every load process still running. */
export function stopAllLoads(): void {
  killAll(live);
  live.clear();
}

type ChildMessage = { type: 'started'; startedAt: number } | ({ type: 'snapshot'; seq: number } & Snapshot) | { type: 'result'; result: LoadResult };

export async function startLoad(opts: LoadOptions): Promise<Load> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    onTestProcessExit(stopAllLoads);
  }
  const proc = fork(CHILD, [JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  live.add(proc);
  // The child's own bounds end it; this is only the guard against a wedged child.
  const hardLimitMs = opts.maxDurationMs + (opts.requestTimeoutMs ?? 10_000) + 15_000;
  const done = new Promise<LoadResult>((resolve, reject) => {
    let result: LoadResult | null = null;
    const guard = setTimeout(() => proc.kill('SIGKILL'), hardLimitMs);
    proc.on('message', (m: ChildMessage) => {
      if (m.type === 'result') result = m.result;
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(guard);
      live.delete(proc);
      if (result) resolve(result);
      else reject(new Error(`load process exited (${code ?? signal}) without a result`));
    });
  });
  done.catch(() => undefined);
  const startedAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('load process did not start within 10 s')), 10_000);
    const onMsg = (m: ChildMessage) => {
      if (m.type !== 'started') return;
      clearTimeout(timer);
      proc.off('message', onMsg);
      resolve(m.startedAt);
    };
    proc.on('message', onMsg);
    done.catch((e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });

  let seq = 0;
  const snapshot = (): Promise<Snapshot> =>
    new Promise((resolve, reject) => {
      if (!proc.connected) return reject(new Error('load process has ended'));
      const mySeq = ++seq;
      const timer = setTimeout(() => finish(() => reject(new Error('load process: no snapshot within 5 s'))), 5000);
      const onMsg = (m: ChildMessage) => {
        if (m.type === 'snapshot' && m.seq === mySeq) finish(() => resolve(m));
      };
      const finish = (f: () => void) => {
        clearTimeout(timer);
        proc.off('message', onMsg);
        f();
      };
      proc.on('message', onMsg);
      proc.send({ type: 'snapshot', seq: mySeq });
    });

  return {
    startedAt,
    snapshot,
    async waitFor(pred, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      let last: Snapshot | null = null;
      for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
        last = await snapshot();
        if (pred(last)) return last;
        await sleep(50);
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last snapshot ${JSON.stringify(last)}`);
    },
    stop() {
      if (proc.connected) proc.send({ type: 'stop' });
      return done;
    },
    done,
  };
}

export { sleep };

/** Sums the buckets whose start lies in [fromT, toT) (ms since startedAt). */
export function windowOf(r: LoadResult, fromT: number, toT: number): { total: number; ok: number; failed: number; byBackend: Record<string, number> } {
  const out = { total: 0, ok: 0, failed: 0, byBackend: {} as Record<string, number> };
  for (const b of r.timeline) {
    if (b.t < fromT || b.t >= toT) continue;
    out.total += b.total;
    out.ok += b.ok;
    out.failed += b.failed;
    for (const [k, v] of Object.entries(b.byBackend)) out.byBackend[k] = (out.byBackend[k] ?? 0) + v;
  }
  return out;
}

/** A backend's share of the answers in [fromT, toT); NaN when there were none. */
export function shareOf(r: LoadResult, backend: string, fromT: number, toT: number): number {
  const w = windowOf(r, fromT, toT);
  return (w.byBackend[backend] ?? 0) / w.total;
}

/** One line of figures plus the first failures, for console.log. */
export function describeLoad(label: string, r: LoadResult, maxFailures = 20): string {
  const lines = [
    `[${label}] ${r.failed} failed / ${r.total} total in ${r.wallMs} ms (stopped by ${r.stoppedBy}); statuses ${JSON.stringify(r.statuses)}; errors ${JSON.stringify(r.errors)}; by backend ${JSON.stringify(r.byBackend)}; Connection: close ${r.connectionClose}`,
  ];
  for (const f of r.failures.slice(0, maxFailures)) {
    lines.push(
      `  failure at t=${f.t}ms (started t=${f.startT}ms, ${f.durationMs}ms): ${f.kind === 'status' ? `status ${f.status}` : f.code}${f.backend ? ` backend ${f.backend}` : ''}${f.requestId ? ` reqId ${f.requestId}` : ''}${f.reusedSocket ? ' (reused socket)' : ''}`,
    );
  }
  if (r.failures.length > maxFailures) lines.push(`  ... ${r.failures.length - maxFailures} more failures`);
  return lines.join('\n');
}
