// Owns DNS discovery of backends for `discover:` pools, in the primary: the lookups (A and AAAA of
// a name, or SRV records and their targets' addresses) through one resolver, the last known set of
// backends per pool, and the re-lookup every `every`. A set that changes is handed to the caller,
// which publishes it the way a reload publishes a config (a new generation): new addresses join,
// removed ones finish their requests in the old generation. A failed or empty lookup keeps the
// last known set and is logged.

import { promises as dns } from 'node:dns';
import type { Logger } from 'pino';
import { normaliseBackendUrl } from '../config/backend-url.js';
import type { BackendConfig, Config, DiscoverConfig, PoolConfig, ResolverConfig } from '../config/types.js';

/** A lookup that takes longer than this (per try, two tries) counts as failed. */
const LOOKUP_TIMEOUT_MS = 2000;

interface Known {
  /** The discover settings the set was found with (a reload may change them). */
  readonly spec: string;
  backends: readonly BackendConfig[];
}

function specOf(d: DiscoverConfig): string {
  return `${d.kind} ${d.name} ${d.port} ${d.weight}`;
}

function describe(d: DiscoverConfig): string {
  return d.kind === 'dns' ? `${d.name} (A/AAAA) port ${d.port}` : `${d.name} (SRV)`;
}

function backendAt(address: string, port: number, weight: number): BackendConfig {
  const a = normaliseBackendUrl(address.includes(':') ? `http://[${address}]:${port}` : `http://${address}:${port}`);
  if (typeof a === 'string') throw new Error(`discovered address ${address}: ${a}`);
  return { ...a, weight };
}

export class Discovery {
  private readonly resolver: dns.Resolver;
  private readonly log: Logger;
  private readonly known = new Map<string, Known>();
  /** URLs that joined a pool since takeJoined() was last called, by pool. */
  private joined = new Map<string, Set<string>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Bumped by start() and stop(): a lookup of an earlier round neither reports nor reschedules. */
  private round = 0;

  constructor(resolver: ResolverConfig | null, log: Logger) {
    this.resolver = new dns.Resolver({ timeout: LOOKUP_TIMEOUT_MS, tries: 2 });
    if (resolver !== null) this.resolver.setServers([resolver.host.includes(':') ? `[${resolver.host}]:${resolver.port}` : `${resolver.host}:${resolver.port}`]);
    this.log = log.child({ component: 'discovery' });
  }

  /** The backends `d` names now, sorted by URL; throws when the lookup fails or finds nothing. */
  async lookup(d: DiscoverConfig): Promise<BackendConfig[]> {
    const byUrl = new Map<string, BackendConfig>();
    const addresses = async (name: string): Promise<string[]> => {
      const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(name), this.resolver.resolve6(name)]);
      if (v4.status === 'rejected' && v6.status === 'rejected') throw v4.reason as Error;
      return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    };
    if (d.kind === 'dns') {
      for (const a of await addresses(d.name)) {
        const b = backendAt(a, d.port, d.weight);
        byUrl.set(b.url, b);
      }
    } else {
      const records = await this.resolver.resolveSrv(d.name);
      const targets = await Promise.all(records.map((r) => addresses(r.name).catch(() => [] as string[])));
      records.forEach((r, k) => {
        for (const a of targets[k]!) {
          const b = backendAt(a, r.port, d.weight);
          byUrl.set(b.url, b);
        }
      });
    }
    if (byUrl.size === 0) throw new Error('no address found');
    return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  }

  /**
   * Looks up every discover pool of `config` whose set is not known yet for its settings (at
   * start, and for a reload's new or changed pools). Throws, naming the pool, when one of them
   * finds no backend: without one the pool cannot be laid out.
   */
  async prepare(config: Config): Promise<void> {
    for (const pool of config.pools) {
      const d = pool.discover;
      if (d === null) continue;
      const known = this.known.get(pool.name);
      if (known !== undefined && known.spec === specOf(d)) continue;
      let backends: BackendConfig[];
      try {
        backends = await this.lookup(d);
      } catch (err) {
        throw new Error(`pool ${pool.name}: DNS discovery of ${describe(d)} found no backend: ${(err as Error).message}`);
      }
      this.known.set(pool.name, { spec: specOf(d), backends });
      this.log.info({ pool: pool.name, discover: describe(d), backends: backends.map((b) => b.url) }, 'discovered backends');
    }
    for (const name of this.known.keys()) if (!config.pools.some((p) => p.name === name && p.discover !== null)) this.known.delete(name);
  }

  /** `config` with every discover pool's backends set to its last known set. */
  fill(config: Config): Config {
    if (!config.pools.some((p) => p.discover !== null)) return config;
    const pools = config.pools.map((p): PoolConfig => (p.discover === null ? p : { ...p, backends: this.known.get(p.name)?.backends ?? [] }));
    return Object.freeze({ ...config, pools: Object.freeze(pools) });
  }

  /** The URLs (by keyOf-style "pool url") that joined since the last call. */
  takeJoined(): ReadonlySet<string> {
    const out = new Set<string>();
    for (const [pool, urls] of this.joined) for (const u of urls) out.add(`${pool} ${u}`);
    this.joined = new Map();
    return out;
  }

  /** Re-look up every discover pool of `config` every `every`; `onChange` after a set changed. */
  start(config: Config, onChange: () => void): void {
    this.stopTimers();
    const round = ++this.round;
    for (const pool of config.pools) {
      const d = pool.discover;
      if (d === null) continue;
      const again = (): void => {
        this.timers.set(
          pool.name,
          setTimeout(() => {
            void this.refresh(pool.name, d).then((changed) => {
              if (round !== this.round) return;
              if (changed) onChange();
              again();
            });
          }, d.everyMs),
        );
      };
      again();
    }
  }

  stop(): void {
    this.round++;
    this.stopTimers();
  }

  private stopTimers(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** One re-lookup; true when the pool's set changed. A failure keeps the last set. */
  private async refresh(pool: string, d: DiscoverConfig): Promise<boolean> {
    const known = this.known.get(pool);
    if (known === undefined) return false;
    let backends: BackendConfig[];
    try {
      backends = await this.lookup(d);
    } catch (err) {
      this.log.warn({ pool, discover: describe(d), err: { message: (err as Error).message }, kept: known.backends.map((b) => b.url) }, `DNS discovery failed: keeping the ${known.backends.length} last known backend(s)`);
      return false;
    }
    const before = new Set(known.backends.map((b) => b.url));
    const after = new Set(backends.map((b) => b.url));
    const added = [...after].filter((u) => !before.has(u));
    const removed = [...before].filter((u) => !after.has(u));
    if (added.length === 0 && removed.length === 0) return false;
    known.backends = backends;
    let joined = this.joined.get(pool);
    if (joined === undefined) this.joined.set(pool, (joined = new Set()));
    for (const u of added) joined.add(u);
    for (const u of removed) joined.delete(u);
    this.log.info({ pool, discover: describe(d), added, removed }, 'discovered backends changed');
    return true;
  }
}
