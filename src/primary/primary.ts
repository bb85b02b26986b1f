// Owns the primary thread's control plane: the one owner of the published {config, shared state,
// generation}. It starts the workers, the publisher (health checks and shared state) and the admin
// server for a validated config, applies reloads (a signal or an admin request), admin weight
// overrides and the backends DNS discovery finds (src/health/discovery.ts) as new generations, one
// at a time, and implements what the admin server may do (admin/actions.ts). Signals: signals.ts.

import { cacheFigures } from '../admin/cache.js';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AdminActions, ReloadResult, WeightResult } from '../admin/actions.js';
import { AdminServer } from '../admin/server.js';
import { Counters } from '../admin/counters.js';
import { formatProblem, loadConfigFile } from '../config/index.js';
import { listenerAddress } from '../config/listeners.js';
import { keepRestartOnly } from '../config/restart-only.js';
import type { Config } from '../config/types.js';
import { DataPlane, layoutFor } from './data-plane.js';
import { Discovery } from '../health/discovery.js';
import { KeptState, withWeight } from './kept-state.js';
import { Publisher } from './publisher.js';

export type { ReloadResult, WeightResult };

/** The running proxy: the one owner of the published {config, state, generation}; what the admin server may do with it. */
export interface RunningProxy extends AdminActions {
  readonly dataPlane: DataPlane;
  readonly publisher: Publisher;
  /** Counters across generations, for the admin server. */
  readonly counters: Counters;
  /** Stop: in-flight requests get up to graceMs (default timeouts.drain) to finish. */
  stop(graceMs?: number): Promise<void>;
}

function tlsChanged(a: Config['listen'], b: Config['listen']): boolean {
  return a.some((l, i) => l.tls !== null && JSON.stringify(l.tls) !== JSON.stringify(b[i]!.tls));
}

/**
 * Linux's net.ipv4.tcp_migrate_req: closing one of several SO_REUSEPORT listen sockets hands the
 * connections queued on it to another instead of resetting them (measured: 0 resets in 58 swaps
 * with it, 141 of 2,000 new connections reset without). True where the file is missing (not Linux).
 */
function migratesQueuedConnections(): boolean {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() !== '0';
  } catch {
    return true;
  }
}

/** `127.0.0.1:8080`, or several: `0.0.0.0:443 (tls), 0.0.0.0:80`. */
function listenSummary(config: Config): string {
  return config.listen.map((l) => listenerAddress(l) + (l.tls === null ? '' : ' (tls)')).join(', ');
}

function poolSummary(config: Config): unknown {
  return config.pools.map((p) => ({ name: p.name, algorithm: p.algorithm, backends: p.backends.map((b) => `${b.url} w${b.weight}`) }));
}

/** `onAccepted` hears the source text of every configuration a reload accepted. */
export async function startProxy(fileConfig: Config, log: Logger, file: string, onAccepted?: (text: string) => void): Promise<RunningProxy> {
  // discover: pools get their backends from DNS before anything is laid out
  const discovery = new Discovery(fileConfig.resolver, log);
  try {
    await discovery.prepare(fileConfig);
  } catch (err) {
    log.error({ err: { message: (err as Error).message } }, `cannot start: ${(err as Error).message}`);
    throw err;
  }
  // what the state file kept is in place before the workers take their first request
  const keptState = new KeptState(fileConfig.stateFile, log);
  const kept = keptState.load(discovery.fill(fileConfig));
  const config = kept.config;
  const dataPlane = new DataPlane(config, log);
  const publisher = new Publisher(config, dataPlane.state, log);
  publisher.restore(kept.health);
  try {
    await dataPlane.start();
  } catch (err) {
    log.error({ err: { message: (err as Error).message } }, `cannot start: ${(err as Error).message}`);
    await dataPlane.stop(0);
    throw err;
  }
  publisher.onKeptChange = () => keptState.save(publisher);
  // entries for backends no longer configured are dropped from the file
  keptState.save(publisher);
  publisher.start();
  const counters = new Counters(config, dataPlane.state);

  let current = config;
  /** The file's config (restart-only fields pinned), before discovery and weight overrides. */
  let base = fileConfig;
  let generation = 1;
  // reloads and weight changes, one at a time, in order
  let queue: Promise<unknown> = Promise.resolve();
  function serial<T>(f: () => Promise<T>): Promise<T> {
    const next = queue.then(f, f);
    queue = next.catch(() => undefined);
    return next;
  }

  /** Lay `next` out as the next generation and switch every worker to it. Returns the workers that confirmed. */
  async function publish(next: Config, joined?: ReadonlySet<string>): Promise<number> {
    generation++;
    const state = layoutFor(next, generation);
    publisher.swap(next, state, joined);
    counters.publish(next, state);
    const confirmed = await dataPlane.publish(next, state);
    current = next;
    if (confirmed < next.workers) log.error({ generation, confirmed, workers: next.workers }, 'reload: not every worker confirmed the new configuration');
    return confirmed;
  }

  async function applyReload(): Promise<ReloadResult> {
    const result = loadConfigFile(file);
    if (!result.ok) {
      const problems = result.problems.map(formatProblem);
      log.error({ file, problems }, 'reload rejected');
      counters.noteReload(false, problems);
      return { ok: false, problems };
    }
    for (const w of result.warnings) log.warn({ file: w.file, line: w.line, field: w.path }, w.message);
    const pinned = keepRestartOnly(result.config, current);
    let next = pinned.config;
    if (pinned.kept.length > 0) log.warn({ fields: pinned.kept }, `${pinned.kept.join(', ')} change only on restart: the running values are kept`);
    // a listener's TLS settings and certificate files may change (the workers swap its app)
    if (!pinned.kept.includes('listen') && tlsChanged(next.listen, current.listen) && !migratesQueuedConnections()) {
      log.warn(
        'new TLS certificates: the workers swap their listen sockets; with net.ipv4.tcp_migrate_req=0 a connection queued on the old socket at that moment is reset (set it to 1 to drop none)',
      );
    }
    try {
      // a new or changed discover: pool is looked up now; the others keep their last known set
      await discovery.prepare(next);
    } catch (err) {
      const problems = [`${file}: ${(err as Error).message}`];
      log.error({ file, problems }, 'reload rejected');
      counters.noteReload(false, problems);
      return { ok: false, problems };
    }
    base = next;
    discovery.start(base, onDiscovered);
    // a reload goes back to the file's weights
    keptState.clearWeights();
    next = discovery.fill(next);
    const confirmed = await publish(next);
    counters.noteReload(true);
    onAccepted?.(result.text);
    log.info({ file, generation, workers: confirmed, pools: poolSummary(next) }, 'reloaded');
    // removed backends and dropped weight overrides leave the state file
    keptState.save(publisher);
    return { ok: true, generation, workers: confirmed };
  }

  async function applyWeight(pool: string | null, url: string, weight: number): Promise<WeightResult> {
    const r = withWeight(current, pool, url, weight);
    if (!r.found) return { ok: false, error: `no backend ${url}${pool === null ? '' : ` in pool ${pool}`}` };
    if (r.changed.length > 0) {
      await publish(r.config);
      keptState.setWeight(r.changed, url);
      keptState.save(publisher);
    }
    return { ok: true, generation, changed: r.changed };
  }

  /** A discover: pool's set changed: publish it as a reload would (weight overrides kept). */
  function onDiscovered(): void {
    void serial(async () => {
      const joined = discovery.takeJoined();
      const next = keptState.applyWeights(discovery.fill(base));
      await publish(next, joined);
      keptState.save(publisher);
      const discovered = next.pools.filter((p) => p.discover !== null).map((p) => ({ name: p.name, backends: p.backends.map((b) => b.url) }));
      log.info({ generation, pools: discovered }, 'published discovered backends');
    }).catch((err: unknown) => log.error({ err }, 'cannot publish discovered backends'));
  }
  discovery.start(base, onDiscovered);

  const proxy: RunningProxy = {
    dataPlane,
    publisher,
    counters,
    get config() {
      return current;
    },
    snapshot() {
      return counters.snapshot();
    },
    get serving() {
      return dataPlane.serving;
    },
    poolHasAvailable(k) {
      return dataPlane.state.poolHasAvailable(k);
    },
    cacheFigures() {
      return dataPlane.cache === null ? null : cacheFigures(dataPlane.cache, current);
    },
    purgeCache(target, prefix) {
      return dataPlane.cache === null ? null : dataPlane.cache.purge(target, prefix);
    },
    setDraining(url, on, pool) {
      return publisher.setDraining(url, on, pool);
    },
    reload() {
      // one at a time, in order: two quick SIGHUPs apply the file twice, never interleaved
      return serial(applyReload);
    },
    setWeight(pool, url, weight) {
      return serial(() => applyWeight(pool, url, weight));
    },
    async stop(graceMs = current.timeouts.drainMs) {
      discovery.stop();
      await admin?.close();
      publisher.stop();
      return dataPlane.stop(graceMs);
    },
  };

  let admin: AdminServer | null = null;
  if (config.admin !== null) {
    const server = new AdminServer(proxy, config.admin, log);
    try {
      await server.listen();
      admin = server;
    } catch (err) {
      log.error({ err: { message: (err as Error).message } }, `cannot start: ${(err as Error).message}`);
      discovery.stop();
      publisher.stop();
      await dataPlane.stop(0);
      throw err;
    }
  }
  const adminUrl = config.admin === null ? undefined : admin!.url;
  log.info({ listen: listenSummary(config), workers: config.workers, pools: poolSummary(config), admin: adminUrl }, 'ready');
  return proxy;
}
