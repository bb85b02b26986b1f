// Owns the runtime changes that outlive a restart when `state_file` is set: the admin's weight
// overrides of the running config, and the health verdicts the publisher keeps (drains,
// ejections). At start it reads the file and applies what still matches the config (entries for
// other pools or URLs are logged and dropped); after every change it writes the whole file again.

import type { Logger } from 'pino';
import { deepFreeze } from '../config/freeze.js';
import type { Config } from '../config/types.js';
import type { KeptHealth } from '../health/backend-health.js';
import { keyOf, type Publisher } from './publisher.js';
import { readStateFile, writeStateFile, type KeptBackend } from './state-file.js';

export interface WeightChange {
  readonly pool: string;
  readonly from: number;
  readonly to: number;
}

/** `config` with backend `url`'s weight set in `pool` (null: every pool), and what changed. */
export function withWeight(config: Config, pool: string | null, url: string, weight: number): { config: Config; changed: WeightChange[]; found: boolean } {
  const changed: WeightChange[] = [];
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

export class KeptState {
  private readonly file: string | null;
  private readonly log: Logger;
  /** Admin weight overrides by keyOf(pool, url). */
  private readonly weights = new Map<string, number>();

  constructor(file: string | null, log: Logger) {
    this.file = file;
    this.log = log.child({ component: 'state' });
  }

  /**
   * Reads the state file: `config` with the kept weights applied, and the verdicts for the
   * publisher to restore. Anything wrong is a warning; the config alone is then the start.
   */
  load(config: Config): { config: Config; health: Map<string, KeptHealth> } {
    const health = new Map<string, KeptHealth>();
    if (this.file === null) return { config, health };
    const read = readStateFile(this.file);
    if (!read.ok) {
      if (read.missing) this.log.info({ file: this.file }, read.warning);
      else this.log.warn({ file: this.file }, read.warning);
      return { config, health };
    }
    for (const w of read.warnings) this.log.warn({ file: this.file }, w);
    let next = config;
    let applied = 0;
    for (const b of read.backends) {
      const pool = config.pools.find((p) => p.name === b.pool);
      if (pool === undefined || !pool.backends.some((x) => x.url === b.backend)) {
        this.log.warn({ file: this.file, pool: b.pool, backend: b.backend }, `state file: ${b.backend} in pool ${b.pool} is not in the configuration: its kept state is ignored`);
        continue;
      }
      const key = keyOf(b.pool, b.backend);
      if (b.weight !== null) {
        next = withWeight(next, b.pool, b.backend, b.weight).config;
        this.weights.set(key, b.weight);
      }
      health.set(key, { draining: b.draining, ejectedUntil: b.ejectedUntil, ejections: b.ejections });
      applied++;
    }
    this.log.info({ file: this.file, backends: applied }, 'state file loaded');
    return { config: next, health };
  }

  /** An admin weight override, kept until a reload from the file. */
  setWeight(changed: readonly WeightChange[], url: string): void {
    for (const c of changed) this.weights.set(keyOf(c.pool, url), c.to);
  }

  /** `config` with every weight override whose pool and backend it still has (DNS discovery republishes from the file's config). */
  applyWeights(config: Config): Config {
    let next = config;
    for (const p of config.pools) {
      for (const b of p.backends) {
        const w = this.weights.get(keyOf(p.name, b.url));
        if (w !== undefined) next = withWeight(next, p.name, b.url, w).config;
      }
    }
    return next;
  }

  /** A reload goes back to the file's weights. */
  clearWeights(): void {
    this.weights.clear();
  }

  /** Writes the file from the publisher's verdicts and the overrides (only backends with something kept). */
  save(publisher: Publisher): void {
    if (this.file === null) return;
    const backends: KeptBackend[] = [];
    for (const { pool, url, kept } of publisher.keptHealth()) {
      const weight = this.weights.get(keyOf(pool, url)) ?? null;
      if (!kept.draining && kept.ejectedUntil === 0 && kept.ejections === 0 && weight === null) continue;
      backends.push({ pool, backend: url, draining: kept.draining, weight, ejectedUntil: kept.ejectedUntil, ejections: kept.ejections });
    }
    try {
      writeStateFile(this.file, backends);
    } catch (err) {
      this.log.error({ err: { message: (err as Error).message }, file: this.file }, `cannot write the state file: ${(err as Error).message}`);
    }
  }
}
