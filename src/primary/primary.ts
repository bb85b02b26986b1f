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

/** Install the signal handlers of a foreground proxy: drain on SIGTERM / SIGINT, then exit. */
export function exitOnSignals(proxy: RunningProxy, log: Logger, onStopped?: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'already stopping');
      return;
    }
    stopping = true;
    log.info({ signal }, 'stopping: draining in-flight requests');
    proxy
      .stop()
      .then(() => onStopped?.())
      .then(
        () => {
          log.info('stopped');
          log.flush(() => process.exit(0));
        },
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          log.flush(() => process.exit(1));
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
