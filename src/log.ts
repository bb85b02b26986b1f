// Owns logger creation: pino JSON through an asynchronous destination (sonic-boom), so a log line
// never blocks the request path (and works the same in worker threads). The destination is stdout
// or `log.file`, opened for appending by every writer (supervisor, primary, each worker: O_APPEND
// keeps their lines whole) and reopened by path on SIGUSR1, after logrotate renamed it.

import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/types.js';

export interface LogOutput {
  readonly log: Logger;
  /**
   * Reopens the file by its path: lines already logged go to the old file, later ones to the new
   * one; resolves once the new file is open. Rejects when it cannot be opened (lines keep going to
   * the old file). No-op on stdout.
   */
  reopen(): Promise<void>;
}

/**
 * Access lines (one per request, from worker threads) are written in batches: one write from
 * BATCH_BYTES on or every BATCH_FLUSH_MS when fewer came, instead of one write system call per
 * line (about 5 µs CPU per line saved). Every other logger writes each line at once: an error
 * line must be there when its response is.
 */
const BATCH_BYTES = 2048;
const BATCH_FLUSH_MS = 200;
/**
 * At most this much per write, whole lines only (sonic-boom cuts its buffer at line ends): on a
 * pipe (stdout under systemd or docker), writes up to PIPE_BUF (4096 on Linux) are atomic, so the
 * lines of the supervisor, the primary and the workers never interleave there either; appends to
 * a file are whole whatever their size.
 */
const MAX_WRITE = 4096;

export function createLogger(level: LogLevel, file: string | null, batched = false): LogOutput {
  const batching = batched ? { minLength: BATCH_BYTES, periodicFlush: BATCH_FLUSH_MS, maxWrite: MAX_WRITE } : { minLength: 0, maxWrite: MAX_WRITE };
  if (file === null) {
    const log = pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: false, ...batching }));
    return { log, reopen: () => Promise.resolve() };
  }
  const dest = pino.destination({ dest: file, sync: false, mkdir: false, append: true, ...batching });
  // The open (at start, or on reopen) can fail, say when the directory went away: sonic-boom emits
  // 'error' and keeps the old descriptor. Without a listener that would be an uncaught exception
  // (in a worker thread it aborts the process); reopen() reports it to its caller instead. pino's
  // own listener re-emits what is not EPIPE, so one error can arrive twice.
  let failed: ((err: Error) => void) | null = null;
  let lastError: Error | null = null;
  dest.on('error', (err: Error) => {
    if (err === lastError) return;
    lastError = err;
    if (failed !== null) return failed(err);
    process.stderr.write(`corelb: log file ${file}: ${err.message}\n`);
  });
  const log = pino({ level, base: { pid: process.pid } }, dest);
  const reopenOnce = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const done = (err: Error | null): void => {
        failed = null;
        dest.off('ready', onReady);
        if (err === null) resolve();
        else reject(err);
      };
      const onReady = (): void => done(null);
      // a batch still buffered belongs to the old file (its lines were logged before the signal)
      dest.flush(() => {
        failed = done;
        dest.once('ready', onReady);
        try {
          dest.reopen();
        } catch (err) {
          done(err as Error);
        }
      });
    });
  // one at a time: two quick SIGUSR1s must not share the 'ready' and 'error' listeners
  let last: Promise<void> = Promise.resolve();
  const reopen = (): Promise<void> => (last = last.then(reopenOnce, reopenOnce));
  return { log, reopen };
}
