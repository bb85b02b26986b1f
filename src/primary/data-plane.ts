// Owns the data plane seen from the primary: lays out the shared buffer for a config, starts one
// long-lived serve task per worker thread through piscina, and stops them the only safe way (by
// asking each to close its uWS app, then destroying the pool once every task has returned).
// The cache's store is made here once, at start, and handed to every worker: reloads keep it.

import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { poolLayout } from '../balancer/registry.js';
import { SharedState } from '../shared/layout.js';
import { CacheStore } from '../cache/store.js';
import type { ControlMessage, ServeTask } from '../worker/serve.js';

export function layoutFor(config: Config, generation = 1): SharedState {
  return SharedState.create({ pools: config.pools.map((p) => poolLayout(p.algorithm, p.backends)), workers: config.workers }, generation);
}

/** How long a reload waits for every worker to switch before it reports them as late. */
const RELOAD_ACK_MS = 5_000;

export class DataPlane {
  state: SharedState;
  /** The shared response store (config.cache at start), or null. */
  readonly cache: CacheStore | null;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly pool: Piscina;
  private readonly controls: MessagePort[] = [];
  private readonly tasks: Promise<unknown>[] = [];
  private stopping: Promise<void> | null = null;
  private listening = false;
  /** Serve tasks that have returned (a worker that ended without being asked to: it died). */
  private ended = 0;
  /** Per worker: resolves the pending reload's acknowledgement. */
  private readonly reloadAcks = new Map<number, (ok: boolean) => void>();
  /** Per worker: the pending log reopens' acknowledgements, oldest first. */
  private readonly reopenAcks = new Map<number, ((ok: boolean) => void)[]>();

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
    this.state = layoutFor(config);
    this.cache = config.cache === null ? null : CacheStore.create(config.cache.sizeBytes);
    this.pool = new Piscina({
      filename: new URL('../worker/serve.js', import.meta.url).href,
      minThreads: config.workers,
      maxThreads: config.workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      atomics: 'disabled',
    });
  }

  /** Resolves when every worker listens; rejects with the first worker's error. */
  async start(): Promise<void> {
    const listening: Promise<void>[] = [];
    for (let workerId = 0; workerId < this.config.workers; workerId++) {
      const { port1, port2 } = new MessageChannel();
      this.controls.push(port1);
      listening.push(
        new Promise<void>((resolve, reject) => {
          let up = false;
          port1.on('message', (m: ControlMessage) => {
            if (m.type === 'listening') {
              up = true;
              resolve();
            } else if (m.type === 'reloaded') this.ack(workerId, true);
            else if (m.type === 'logs-reopened') this.reopenAcks.get(workerId)?.shift()?.(m.ok);
            else if (m.type === 'error') {
              if (up) this.ack(workerId, false);
              else reject(new Error(m.message));
            }
          });
        }),
      );
      const task: ServeTask = { workerId, config: this.config, buffer: this.state.buffer, cache: this.cache?.buffer ?? null, control: port2 };
      const done = this.pool.run(task, { transferList: [port2] as never });
      // a task that fails before listening rejects `listening` through its control message;
      // one that fails later is logged here
      this.tasks.push(
        done
          .catch((err: unknown) => this.log.error({ err, workerId }, 'worker stopped with an error'))
          .finally(() => {
            this.ended++;
          }),
      );
    }
    await Promise.all(listening);
    this.listening = true;
  }

  /** Every worker listens and none has stopped, and no stop was asked for (the admin's /readyz). */
  get serving(): boolean {
    return this.listening && this.stopping === null && this.ended === 0;
  }

  private ack(workerId: number, ok: boolean): void {
    const resolve = this.reloadAcks.get(workerId);
    this.reloadAcks.delete(workerId);
    resolve?.(ok);
  }

  /**
   * Send a new config and its freshly laid-out buffer to every worker; each switches at its next
   * request. Resolves with how many workers confirmed (all of them, unless one failed or is late).
   */
  async publish(config: Config, state: SharedState): Promise<number> {
    if (this.stopping !== null) return 0;
    this.state = state;
    const acks = this.controls.map(
      (c, workerId) =>
        new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => this.ack(workerId, false), RELOAD_ACK_MS);
          this.reloadAcks.set(workerId, (ok) => {
            clearTimeout(timer);
            resolve(ok);
          });
          c.postMessage({ type: 'reload', config, buffer: state.buffer } satisfies ControlMessage);
        }),
    );
    const results = await Promise.all(acks);
    return results.filter(Boolean).length;
  }

  /**
   * SIGUSR1: every worker reopens its log destination by path. Resolves with how many confirmed
   * within RELOAD_ACK_MS.
   */
  async reopenLogs(): Promise<number> {
    if (this.stopping !== null) return 0;
    const acks = this.controls.map(
      (c, workerId) =>
        new Promise<boolean>((resolve) => {
          let queue = this.reopenAcks.get(workerId);
          if (queue === undefined) this.reopenAcks.set(workerId, (queue = []));
          // a late answer still takes its own entry (answers come in order), so it never
          // confirms a later request; the timeout only stops the wait
          const timer = setTimeout(() => resolve(false), RELOAD_ACK_MS);
          const settle = (ok: boolean): void => {
            clearTimeout(timer);
            resolve(ok);
          };
          queue.push(settle);
          c.postMessage({ type: 'reopen-logs' } satisfies ControlMessage);
        }),
    );
    const results = await Promise.all(acks);
    return results.filter(Boolean).length;
  }

  /** Ask every worker to drain (bounded by graceMs), wait for all, then release the threads. */
  stop(graceMs: number): Promise<void> {
    if (this.stopping !== null) {
      // already draining: a stop without grace cuts the drain short
      if (graceMs === 0) for (const c of this.controls) c.postMessage({ type: 'stop', graceMs } satisfies ControlMessage);
      return this.stopping;
    }
    this.stopping = (async () => {
      for (const c of this.controls) {
        c.postMessage({ type: 'stop', graceMs } satisfies ControlMessage);
      }
      await Promise.allSettled(this.tasks);
      for (const c of this.controls) c.close();
      await this.pool.destroy();
    })();
    return this.stopping;
  }
}
