// Owns the primary thread's run of `corelb start`: start the data plane for a validated config,
// announce readiness, and turn SIGTERM / SIGINT into a graceful drain and exit 0.

import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { DataPlane } from './data-plane.js';

const DRAIN_MS = 10_000;

export interface RunningProxy {
  readonly dataPlane: DataPlane;
  /** Graceful stop: resolves once every worker has drained and closed. */
  stop(): Promise<void>;
}

export async function startProxy(config: Config, log: Logger): Promise<RunningProxy> {
  const dataPlane = new DataPlane(config, log);
  try {
    await dataPlane.start();
  } catch (err) {
    log.error({ err: { message: (err as Error).message } }, `cannot start: ${(err as Error).message}`);
    await dataPlane.stop(0);
    throw err;
  }
  const listen = `${config.listen.host}:${config.listen.port}`;
  log.info(
    {
      listen,
      workers: config.workers,
      pools: config.pools.map((p) => ({ name: p.name, algorithm: p.algorithm, backends: p.backends.map((b) => `${b.url} w${b.weight}`) })),
    },
    'ready',
  );
  return { dataPlane, stop: () => dataPlane.stop(DRAIN_MS) };
}

/**
 * The signal handling of a foreground proxy, installed before anything starts: SIGTERM / SIGINT
 * drain and exit 0, also when they arrive while the workers are still starting (the stop then
 * runs as soon as they are up). An exception that reaches the primary stops the workers first:
 * exiting while they hold uWS sockets would abort the process.
 */
export class Lifecycle {
  private readonly log: Logger;
  private proxy: RunningProxy | null = null;
  private onStopped: (() => Promise<void>) | undefined;
  private requested: string | null = null;
  private stopping = false;

  constructor(log: Logger) {
    this.log = log;
    const onSignal = (signal: NodeJS.Signals): void => this.request(signal);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('uncaughtException', (err) => {
      log.fatal({ err }, 'uncaught exception in the primary: stopping');
      this.stop(1);
    });
  }

  /** The proxy is up: serve until a signal (or run the stop that one already asked for). */
  attach(proxy: RunningProxy, onStopped?: () => Promise<void>): void {
    this.proxy = proxy;
    this.onStopped = onStopped;
    if (this.requested !== null) this.stop(0);
  }

  /** The graceful stop of SIGTERM for a cause that is not a signal (the supervisor went away). */
  requestStop(reason: string): void {
    this.request(reason);
  }

  private request(signal: string): void {
    if (this.requested !== null) {
      this.log.warn({ signal }, 'already stopping');
      return;
    }
    this.requested = signal;
    this.log.info({ signal }, this.proxy === null ? 'stop requested while starting' : 'stopping: draining in-flight requests');
    if (this.proxy !== null) this.stop(0);
  }

  private stop(code: number): void {
    if (this.stopping) return;
    this.stopping = true;
    const proxy = this.proxy;
    const done = proxy === null ? Promise.resolve() : proxy.stop();
    done
      .then(() => this.onStopped?.())
      .then(
        () => {
          this.log.info('stopped');
          this.log.flush(() => process.exit(code));
        },
        (err: unknown) => {
          this.log.error({ err }, 'error while stopping');
          this.log.flush(() => process.exit(1));
        },
      );
  }
}
