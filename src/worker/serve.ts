// Owns the life of one worker thread: the long-lived piscina task that attaches to the shared
// buffer, serves until the primary asks it to stop, and resolves only after uWS is closed (a
// thread holding uWS sockets must never be terminated: it aborts the process).

import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/types.js';
import { SharedState } from '../shared/layout.js';
import { createLogger } from '../log.js';
import { FrontServer } from '../front/server.js';
import { WorkerContext } from '../proxy/context.js';
import { DefaultPhases, type ProxyPhases } from '../proxy/phases.js';

/** How long a drain waits with no request begun before it closes the connections left open. */
const DRAIN_QUIET_MS = 100;

export interface ServeTask {
  readonly workerId: number;
  readonly config: Config;
  readonly buffer: SharedArrayBuffer;
  /** The shared response store, made once by the primary; null: no cache section at start. */
  readonly cache: SharedArrayBuffer | null;
  /** Receives stop / reload / reopen-logs from the primary; the worker answers on it too. */
  readonly control: MessagePort;
}

export type ControlMessage =
  | { type: 'stop'; graceMs: number }
  | { type: 'reload'; config: Config; buffer: SharedArrayBuffer }
  /** SIGUSR1: reopen log.file by its path (after a rotation renamed it); answered logs-reopened. */
  | { type: 'reopen-logs' }
  | { type: 'logs-reopened'; ok: boolean }
  | { type: 'listening' }
  | { type: 'reloaded'; generation: number }
  | { type: 'error'; message: string };

/** The phases with the shared response cache over `buffer` (the primary's store). */
async function cachingPhases(buffer: SharedArrayBuffer): Promise<ProxyPhases> {
  const [{ CachingPhases }, { CacheStore }] = await Promise.all([import('../cache/phases.js'), import('../cache/store.js')]);
  return new CachingPhases(CacheStore.attach(buffer));
}

export default async function serve(task: ServeTask): Promise<{ workerId: number }> {
  const { workerId, config, control } = task;
  // log.file is fixed for the life of the process (a reload keeps it), so this thread's
  // destination is too; reopen-logs only swaps the descriptor behind it. Access lines go through
  // their own batched destination (one write per batch, see src/log.ts); every other line is
  // written at once, so an error is in the log when its response is on the wire.
  const output = createLogger(config.log.level, config.log.file);
  const access = createLogger(config.log.level, config.log.file, true);
  const log = output.log.child({ worker: workerId });
  const accessLog = access.log.child({ worker: workerId });
  // Catch everything in this thread: an uncaught exception in a worker would abort the process.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception in worker'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection in worker'));

  const state = SharedState.attach(task.buffer, workerId);
  const ctx = new WorkerContext(config, state, log, workerId, accessLog);
  let server: FrontServer | null = null;
  try {
    // without a cache section the default phases run, and the cache's code is not even loaded
    const phases = task.cache === null ? new DefaultPhases() : await cachingPhases(task.cache);
    server = new FrontServer(ctx, phases, config.listen);
    await server.listen();
  } catch (e) {
    ctx.close();
    server?.close();
    control.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) } satisfies ControlMessage);
    control.close();
    throw e;
  }
  control.postMessage({ type: 'listening' } satisfies ControlMessage);

  let stopRequested = false;
  const graceMs = await new Promise<number>((resolve) => {
    control.on('message', (m: ControlMessage) => {
      if (m.type === 'stop') {
        // a second stop (SIGQUIT during a drain) with no grace ends the drain now
        if (stopRequested) {
          if (m.graceMs === 0) ctx.endDrain();
        } else {
          stopRequested = true;
          resolve(m.graceMs);
        }
      }
      else if (m.type === 'reopen-logs') {
        Promise.all([output.reopen(), access.reopen()]).then(
          () => control.postMessage({ type: 'logs-reopened', ok: true } satisfies ControlMessage),
          (err: unknown) => {
            log.error({ err }, 'cannot reopen the log file: still writing to the old one');
            control.postMessage({ type: 'logs-reopened', ok: false } satisfies ControlMessage);
          },
        );
      }
      else if (m.type === 'reload') {
        let generation: number;
        try {
          const next = SharedState.attach(m.buffer, workerId);
          ctx.publish(m.config, next);
          generation = next.generation;
        } catch (e) {
          log.error({ err: e }, 'cannot apply the new configuration in this worker');
          control.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) } satisfies ControlMessage);
          return;
        }
        // TLS listeners with new certificates: swapped before the reload is confirmed, so that
        // the connections opened after it get them
        server!.reloadListeners(m.config.listen).then(
          (swapped) => {
            if (swapped.length > 0) log.info({ listen: swapped }, 'new TLS certificates: new connections get them, open ones keep theirs');
            control.postMessage({ type: 'reloaded', generation } satisfies ControlMessage);
          },
          (err: unknown) => {
            log.error({ err }, 'reload: cannot swap the TLS listeners');
            control.postMessage({ type: 'reloaded', generation } satisfies ControlMessage);
          },
        );
      }
    });
  });
  server.stopAccepting();
  ctx.draining = true;
  ctx.closeIdleUpstreams();
  await ctx.whenDrained(graceMs, DRAIN_QUIET_MS);
  if (ctx.inflight > 0) {
    log.warn({ inflight: ctx.inflight }, 'drain time is over: closing requests still in flight');
    ctx.cutting = true;
  }
  // proxied WebSockets last to the end of the drain, then both sides get 1001
  await server.closeWebSockets(1000);
  ctx.close();
  server.close();
  control.close();
  await new Promise<void>((resolve) => accessLog.flush(() => resolve()));
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  return { workerId };
}
