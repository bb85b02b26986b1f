// Owns the writes of backend state into the shared buffer: the only writer of state and effective
// weight. Every tick it judges passive checks from the workers' failure counters, advances
// ejections and slow start, and commits what changed (logging each change once, with its reason);
// active probe results arrive from the probers. A reload swaps in a new buffer: health records are
// kept by pool and backend URL, so verdicts survive it.

import type { Logger } from 'pino';
import type { Config, PoolConfig } from '../config/types.js';
import { BackendHealth, stateName, type HealthOptions, type KeptHealth } from '../health/backend-health.js';
import { usesTls } from '../config/backend-url.js';
import { Prober } from '../health/probe.js';
import { BackendState, WEIGHT_SCALE, type SharedState } from '../shared/layout.js';
import { secureContextFor, upstreamTls } from '../upstream/tls.js';

/** How often passive checks, ejections and slow start are judged. */
export const TICK_MS = 100;

interface Entry {
  readonly index: number;
  readonly poolIndex: number;
  readonly pool: PoolConfig;
  readonly url: string;
  readonly health: BackendHealth;
  published: BackendState;
  /** What the state file was last told of this backend's verdict. */
  kept: KeptHealth;
}

function optionsOf(pool: PoolConfig): HealthOptions {
  return { health: pool.health, passive: pool.passive, slowStartMs: pool.slowStartMs };
}

/** A backend of a pool, as health records and the state file know it. */
export function keyOf(pool: string, url: string): string {
  return pool + ' ' + url;
}

export class Publisher {
  private readonly log: Logger;
  private state: SharedState;
  private entries: Entry[] = [];
  private readonly records = new Map<string, BackendHealth>();
  private readonly probers = new Map<string, Prober>();
  private timer: NodeJS.Timeout | null = null;
  /** Called after a drain, an enable, an ejection or its end changed what the state file keeps. */
  onKeptChange: () => void = () => undefined;

  constructor(config: Config, state: SharedState, log: Logger) {
    this.log = log;
    this.state = state;
    this.adopt(config, state);
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(Date.now()), TICK_MS);
    for (const p of this.probers.values()) p.start();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const p of this.probers.values()) p.stop();
    this.probers.clear();
  }

  /**
   * Reload: publish into `state` (a fresh buffer for `config`), keeping health by pool and URL.
   * `joined` (keyOf keys): backends that DNS discovery just found, which start with slow start.
   */
  swap(config: Config, state: SharedState, joined: ReadonlySet<string> = new Set()): void {
    const before = new Set(this.records.keys());
    this.adopt(config, state, joined);
    for (const key of before) {
      if (this.entries.some((e) => keyOf(e.pool.name, e.url) === key)) continue;
      this.records.delete(key);
      this.probers.get(key)?.stop();
      this.probers.delete(key);
    }
    if (this.timer !== null) for (const p of this.probers.values()) p.start();
  }

  private adopt(config: Config, state: SharedState, joined: ReadonlySet<string> = new Set()): void {
    const previous = this.state;
    this.state = state;
    const entries: Entry[] = [];
    const now = Date.now();
    config.pools.forEach((pool, poolIndex) => {
      const first = state.poolFirstBackend(poolIndex);
      // probes of https:// backends use the pool's TLS settings: one context per pool and reload
      const secure = pool.backends.some((b) => usesTls(b.url)) ? secureContextFor(pool.tls) : null;
      pool.backends.forEach((b, k) => {
        const tls = secure === null || !usesTls(b.url) ? null : upstreamTls(secure, pool.tls, b.host);
        const key = keyOf(pool.name, b.url);
        let health = this.records.get(key);
        if (health === undefined) {
          health = new BackendHealth(pool.name, b.url, optionsOf(pool));
          if (joined.has(key)) health.join(now);
          this.records.set(key, health);
        } else {
          health.reconfigure(optionsOf(pool));
          if (state !== previous) health.restartCounters();
        }
        const prober = this.probers.get(key);
        if (pool.health === null) {
          prober?.stop();
          this.probers.delete(key);
        } else if (prober !== undefined) {
          prober.reconfigure(pool.health, tls);
        } else {
          const h = health;
          this.probers.set(key, new Prober(b.host, b.port, pool.health, tls, (r) => this.onProbe(h, r.ok, r.detail)));
        }
        const index = first + k;
        const s = health.state(now);
        state.setState(index, s);
        state.setEffectiveWeight(index, this.scaled(index, health.ramp(now)));
        entries.push({ index, poolIndex, pool, url: b.url, health, published: s, kept: health.kept() });
      });
    });
    this.entries = entries;
  }

  private scaled(index: number, ramp: number): number {
    return Math.max(1, Math.round(this.state.weight(index) * WEIGHT_SCALE * ramp));
  }

  private onProbe(health: BackendHealth, ok: boolean, detail: string): void {
    health.onProbe(ok, detail, Date.now());
    this.commit(Date.now()); // a flip is published at once, not at the next tick
  }

  /** Judge every backend as of `now` (ms; the timer passes the clock): passive checks, ramps, commits. */
  tick(now: number): void {
    const state = this.state;
    for (const e of this.entries) {
      e.health.observe(state.passiveFailures(e.index), now, this.othersAvailable(e));
      this.commitEntry(e, now); // at once: the next backend's "last one left?" must see it
    }
  }

  /** True when another backend of e's pool would still take traffic if e were ejected. */
  private othersAvailable(e: Entry): boolean {
    const state = this.state;
    const first = state.poolFirstBackend(e.poolIndex);
    const end = first + state.poolBackendCount(e.poolIndex);
    for (let i = first; i < end; i++) if (i !== e.index && state.available(i)) return true;
    return false;
  }

  /** Stage every backend's verdict, then write the ones that changed. */
  private commit(now: number): void {
    for (const e of this.entries) this.commitEntry(e, now);
  }

  private commitEntry(e: Entry, now: number): void {
    const state = this.state;
    const s = e.health.state(now);
    if (e.health.differsFrom(e.kept)) {
      e.kept = e.health.kept();
      this.onKeptChange();
    }
    const weight = this.scaled(e.index, e.health.ramp(now));
    if (state.effectiveWeight(e.index) !== weight) state.setEffectiveWeight(e.index, weight);
    if (s === e.published) return;
    state.setState(e.index, s);
    const fields = { pool: e.pool.name, backend: e.url, from: stateName(e.published), to: stateName(s), reason: e.health.reason };
    if (s === BackendState.Down) this.log.warn(fields, 'backend state');
    else this.log.info(fields, 'backend state');
    e.published = s;
  }

  /**
   * Start: verdicts kept in the state file, by keyOf(pool, url); entries for backends that are not
   * in the config are the caller's to report. Published at once, without calling onKeptChange.
   */
  restore(kept: ReadonlyMap<string, KeptHealth>): void {
    const now = Date.now();
    for (const e of this.entries) {
      const k = kept.get(keyOf(e.pool.name, e.url));
      if (k === undefined) continue;
      e.health.restore(k, now);
      e.kept = e.health.kept();
    }
    this.commit(now);
  }

  /** Every backend's verdict as the state file keeps it, with its pool and URL. */
  keptHealth(): { pool: string; url: string; kept: KeptHealth }[] {
    return this.entries.map((e) => ({ pool: e.pool.name, url: e.url, kept: e.health.kept() }));
  }

  /**
   * Admin: drain or enable a backend by URL, in `pool` only or (null) in every pool that has it.
   * Returns how many pool backends matched.
   */
  setDraining(url: string, on: boolean, pool: string | null = null): number {
    let n = 0;
    for (const e of this.entries) {
      if (e.url !== url || (pool !== null && e.pool.name !== pool)) continue;
      e.health.setDraining(on);
      n++;
    }
    this.commit(Date.now());
    return n;
  }
}
