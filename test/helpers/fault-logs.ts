// Reading corelb's fault-related log lines: `backend state` transitions and retries of one
// backend, and the epoch-ms `time` pino puts on every line (to compare with a load timeline).
import type { Corelb, LogLine } from './corelb.js';

/** True when a logged backend URL names the backend at `url` (ignores a trailing slash). */
export function isBackend(logged: unknown, url: string): boolean {
  return typeof logged === 'string' && logged.replace(/\/+$/, '') === url.replace(/\/+$/, '');
}

/** The line's epoch-ms `time` (pino's default field). */
export function logTime(l: LogLine): number {
  if (typeof l.time !== 'number') throw new Error(`log line without a numeric time: ${JSON.stringify(l)}`);
  return l.time;
}

export function isStateLine(l: LogLine, url: string, to?: string, from?: string): boolean {
  return l.msg === 'backend state' && isBackend(l.backend, url) && (to === undefined || l.to === to) && (from === undefined || l.from === from);
}

/** Every `backend state` line of one backend, in order. */
export function stateLines(lb: Corelb, url: string): LogLine[] {
  return lb.logs().filter((l) => isStateLine(l, url));
}

/** "from -> to @ms since t0 (reason)" for each state line of a backend, for console.log. */
export function describeStates(lb: Corelb, url: string, t0: number): string {
  return stateLines(lb, url)
    .map((l) => `${String(l.from)} -> ${String(l.to)} @${typeof l.time === 'number' ? l.time - t0 : '?'}ms (${String(l.reason ?? '')})`)
    .join('; ');
}

/** Waits for the first state line of `url` (to `to`, optionally from `from`) logged at or after `notBefore` (epoch ms). */
export function waitForState(lb: Corelb, url: string, to: string, opts: { from?: string; notBefore?: number; timeoutMs?: number } = {}): Promise<LogLine> {
  return lb.waitForLog(
    (l) => isStateLine(l, url, to, opts.from) && (opts.notBefore === undefined || (typeof l.time === 'number' && l.time >= opts.notBefore)),
    opts.timeoutMs ?? 10_000,
  );
}

export function retryLines(lb: Corelb): LogLine[] {
  return lb.logs().filter((l) => l.msg === 'retrying on another backend');
}
