// Owns the primary thread's run of the data plane: start the workers, the publisher (health
// checks and shared state) and the admin server for a validated config, announce readiness,
// reload on SIGHUP (or an admin request), publish admin weight overrides the way a reload does,
// turn SIGTERM / SIGINT into a graceful drain (bounded by timeouts.drain) and SIGQUIT into an
// immediate stop, and reopen the log files on SIGUSR1.

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { AdminServer } from '../admin/server.js';
import { Counters } from '../admin/counters.js';
import { deepFreeze, formatProblem, loadConfigFile } from '../config/index.js';
import { listenerAddress } from '../config/listeners.js';
import type { Config } from '../config/types.js';
import { DataPlane, layoutFor } from './data-plane.js';
import { Publisher } from './publisher.js';

export type ReloadResult =
  | { readonly ok: true; readonly generation: number; readonly workers: number }
  | { readonly ok: false; readonly problems: readonly string[] };

export type WeightResult =
  | { readonly ok: true; readonly generation: number; readonly changed: readonly { readonly pool: string; readonly from: number; readonly to: number }[] }
  | { readonly ok: false; readonly error: string };

export interface RunningProxy {
  readonly dataPlane: DataPlane;
  readonly publisher: Publisher;
  /** Counters across generations, for the admin server. */
  readonly counters: Counters;
  /** The config now in effect. */
  readonly config: Config;
  /** Re-read the config file and apply it, or keep the running one and report why not. */
  reload(): Promise<ReloadResult>;
  /**
   * Admin: publish the running config with backend `url`'s weight set to `weight`, in `pool` or
   * (null) in every pool that has it: a new generation, so balancers rebuild their schedules. A
   * reload from the file drops the override.
   */
  setWeight(pool: string | null, url: string, weight: number): Promise<WeightResult>;
  /** Stop: in-flight requests get up to graceMs (default timeouts.drain) to finish. */
  stop(graceMs?: number): Promise<void>;
}

/** `config` with backend `url`'s weight set in `pool` (null: every pool), and what changed. */
function withWeight(config: Config, pool: string | null, url: string, weight: number): { config: Config; changed: { pool: string; from: number; to: number }[]; found: boolean } {
  const changed: { pool: string; from: number; to: number }[] = [];
  let found = false;
  const pools = config.pools.map((p) => {
    if (pool !== null && p.name !== pool) return p;
    const backends = p.backends.map((b) => {
      if (b.url !== url) return b;
      found = true;
      if (b.weight === weight) return b;
      changed.push({ pool: p.name, from: b.weight, to: weight });
      return { ...b, weight };
    });
    return { ...p, backends };
  });
  return { config: changed.length === 0 ? config : deepFreeze({ ...config, pools }), changed, found };
}

function sameAddresses(a: Config['listen'], b: Config['listen']): boolean {
  return (
    a.length === b.length &&
    a.every((l, i) => {
      const o = b[i]!;
      return l.host === o.host && l.port === o.port && (l.tls === null) === (o.tls === null) && l.redirectHttps === o.redirectHttps && l.acmeWebroot === o.acmeWebroot;
    })
  );
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
export async function startProxy(config: Config, log: Logger, file: string, onAccepted?: (text: string) => void): Promise<RunningProxy> {
  const dataPlane = new DataPlane(config, log);
  try {
    await dataPlane.start();
  } catch (err) {
    log.error({ err: { message: (err as Error).message } }, `cannot start: ${(err as Error).message}`);
    await dataPlane.stop(0);
    throw err;
  }
  const publisher = new Publisher(config, dataPlane.state, log);
  publisher.start();
  const counters = new Counters(config, dataPlane.state);

  let current = config;
  let generation = 1;
  // reloads and weight changes, one at a time, in order
  let queue: Promise<unknown> = Promise.resolve();
  function serial<T>(f: () => Promise<T>): Promise<T> {
    const next = queue.then(f, f);
    queue = next.catch(() => undefined);
    return next;
  }

  /** Lay `next` out as the next generation and switch every worker to it. Returns the workers that confirmed. */
  async function publish(next: Config): Promise<number> {
    generation++;
    const state = layoutFor(next, generation);
    publisher.swap(next, state);
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
    let next = result.config;
    // the listen socket and the thread count belong to the running workers; the log file is
    // opened by the supervisor, the primary and every worker, and stdout cannot be reopened as a
    // file (nor the reverse), so it stays what the processes were started with
    const kept: string[] = [];
    // a listener's TLS settings and certificate files may change (the workers swap its app);
    // its address, and whether it speaks TLS, need a restart
    if (!sameAddresses(next.listen, current.listen)) kept.push('listen');
    else if (tlsChanged(next.listen, current.listen) && !migratesQueuedConnections()) {
      log.warn(
        'new TLS certificates: the workers swap their listen sockets; with net.ipv4.tcp_migrate_req=0 a connection queued on the old socket at that moment is reset (set it to 1 to drop none)',
      );
    }
    if (next.workers !== current.workers) kept.push('workers');
    if (next.log.file !== current.log.file) kept.push('log.file');
    if (JSON.stringify(next.admin) !== JSON.stringify(current.admin)) kept.push('admin');
    if (kept.length > 0) {
      log.warn({ fields: kept }, `${kept.join(', ')} change only on restart: the running values are kept`);
      next = Object.freeze({
        ...next,
        listen: current.listen,
        workers: current.workers,
        admin: current.admin,
        log: Object.freeze({ ...next.log, file: current.log.file }),
      });
    }
    const confirmed = await publish(next);
    counters.noteReload(true);
    onAccepted?.(result.text);
    log.info({ file, generation, workers: confirmed, pools: poolSummary(next) }, 'reloaded');
    return { ok: true, generation, workers: confirmed };
  }

  async function applyWeight(pool: string | null, url: string, weight: number): Promise<WeightResult> {
    const r = withWeight(current, pool, url, weight);
    if (!r.found) return { ok: false, error: `no backend ${url}${pool === null ? '' : ` in pool ${pool}`}` };
    if (r.changed.length > 0) await publish(r.config);
    return { ok: true, generation, changed: r.changed };
  }

  const proxy: RunningProxy = {
    dataPlane,
    publisher,
    counters,
    get config() {
      return current;
    },
    reload() {
      // one at a time, in order: two quick SIGHUPs apply the file twice, never interleaved
      return serial(applyReload);
    },
    setWeight(pool, url, weight) {
      return serial(() => applyWeight(pool, url, weight));
    },
    async stop(graceMs = current.timeouts.drainMs) {
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
      publisher.stop();
      await dataPlane.stop(0);
      throw err;
    }
  }
  const adminUrl = config.admin === null ? undefined : admin!.url;
  log.info({ listen: listenSummary(config), workers: config.workers, pools: poolSummary(config), admin: adminUrl }, 'ready');
  return proxy;
}

/**
 * The signal handling of a foreground proxy, installed before anything starts: SIGTERM / SIGINT
 * drain and exit 0, SIGQUIT stops at once, also when they arrive while the workers are still
 * starting (the stop then runs as soon as they are up). SIGHUP reloads the config file. An
 * exception that reaches the primary stops the workers first: exiting while they hold uWS sockets
 * would abort the process. SIGUSR1 reopens log.file in the primary and in every worker (log
 * rotation), then logs `logs reopened` (into the new file).
 */
export class Lifecycle {
  private readonly log: Logger;
  private readonly reopenLog: () => Promise<void>;
  private proxy: RunningProxy | null = null;
  private onStopped: (() => Promise<void>) | undefined;
  private requested: string | null = null;
  private immediate = false;
  private stopping = false;

  constructor(log: Logger, reopenLog: () => Promise<void>) {
    this.log = log;
    this.reopenLog = reopenLog;
    process.on('SIGTERM', () => this.request('SIGTERM'));
    process.on('SIGINT', () => this.request('SIGINT'));
    process.on('SIGQUIT', () => this.request('SIGQUIT', true));
    process.on('SIGHUP', () => this.reload());
    process.on('SIGUSR1', () => this.reopenLogs());
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

  private reload(): void {
    const proxy = this.proxy;
    if (proxy === null || this.stopping) {
      this.log.warn({ signal: 'SIGHUP' }, proxy === null ? 'reload ignored: still starting' : 'reload ignored: stopping');
      return;
    }
    this.log.info({ signal: 'SIGHUP' }, 'reloading configuration');
    proxy.reload().catch((err: unknown) => this.log.error({ err }, 'reload failed'));
  }

  private reopenLogs(): void {
    const own = this.reopenLog().then(
      () => true,
      (err: unknown) => {
        this.log.error({ err }, 'cannot reopen the log file: still writing to the old one');
        return false;
      },
    );
    // while starting there are no control ports yet; the workers open the file when they start
    const dataPlane = this.proxy?.dataPlane;
    const workers = dataPlane === undefined ? Promise.resolve(0) : dataPlane.reopenLogs();
    void Promise.all([own, workers]).then(([primary, confirmed]) => {
      const expected = this.proxy?.config.workers ?? 0;
      const fields = { signal: 'SIGUSR1', primary, workers: confirmed };
      if (primary && confirmed === expected) this.log.info(fields, 'logs reopened');
      else this.log.warn({ ...fields, expected }, 'logs reopened, but not by every writer: some still write to the old file');
    });
  }

  private request(signal: string, immediate = false): void {
    if (immediate && !this.immediate) {
      // SIGQUIT after SIGTERM still cuts the drain short
      this.immediate = true;
      if (this.requested !== null && this.proxy !== null) {
        this.log.info({ signal }, 'stopping at once');
        void this.proxy.dataPlane.stop(0);
        return;
      }
    }
    if (this.requested !== null) {
      this.log.warn({ signal }, 'already stopping');
      return;
    }
    this.requested = signal;
    this.log.info({ signal }, this.proxy === null ? 'stop requested while starting' : immediate ? 'stopping at once' : 'stopping: draining in-flight requests');
    if (this.proxy !== null) this.stop(0);
  }

  private stop(code: number): void {
    if (this.stopping) return;
    this.stopping = true;
    const proxy = this.proxy;
    const done = proxy === null ? Promise.resolve() : proxy.stop(this.immediate ? 0 : undefined);
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
