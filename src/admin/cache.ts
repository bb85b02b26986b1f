// Owns what the admin server shows and does of the shared response cache: its figures (entries,
// bytes, evictions, results per pool, the hit ratio) for GET /cache, /status, /metrics and the
// dashboard, and the purge's request (POST /cache/purge?url=PATH or ?prefix=PATH).

import { BLOCK, CacheStore, COUNTED_POOLS, RESULT_NAMES, Result } from '../cache/store.js';
import type { Config } from '../config/types.js';

export interface CacheFigures {
  readonly sizeBytes: number;
  /** Shared memory the index takes on top of sizeBytes. */
  readonly indexBytes: number;
  readonly entries: number;
  readonly bytes: number;
  readonly evictions: number;
  /** Requests per pool and result (hit, miss, stale, revalidated, bypass). */
  readonly requests: readonly { readonly pool: string; readonly result: string; readonly count: number }[];
  /** Answers from the store (hit, stale, revalidated) over cacheable lookups (those and miss); null before any. */
  readonly hitRatio: number | null;
}

export function cacheFigures(store: CacheStore, config: Config): CacheFigures {
  const requests: { pool: string; result: string; count: number }[] = [];
  let served = 0;
  let looked = 0;
  const seen = new Set<number>();
  for (const pool of config.pools) {
    const row = store.counterRow(pool.name, false);
    // past COUNTED_POOLS pools, rows are shared: listed once
    if (row >= 0 && seen.has(row)) continue;
    seen.add(row);
    const name = row === COUNTED_POOLS - 1 && config.pools.length > COUNTED_POOLS ? '(others)' : pool.name;
    RESULT_NAMES.forEach((result, r) => {
      const count = row < 0 ? 0 : store.counted(row, r); // no row yet: nothing counted
      requests.push({ pool: name, result, count });
      if (r === Result.Hit || r === Result.Stale || r === Result.Revalidated) served += count;
      if (r !== Result.Bypass) looked += count;
    });
  }
  return {
    sizeBytes: config.cache?.sizeBytes ?? store.blocks * 4096,
    indexBytes: store.buffer.byteLength - store.blocks * BLOCK,
    entries: store.entries,
    bytes: store.bytes,
    evictions: store.evictions,
    requests,
    hitRatio: looked === 0 ? null : served / looked,
  };
}

/** The purge a request asks for: exactly one of url and prefix, a path starting with '/'. */
export function purgeRequest(params: Record<string, unknown>): { target: string; prefix: boolean } | string {
  const url = params.url;
  const prefix = params.prefix;
  if ((url === undefined) === (prefix === undefined)) return 'give exactly one of url (an exact path, query included) and prefix';
  const target = url ?? prefix;
  if (typeof target !== 'string' || !target.startsWith('/')) return `${url !== undefined ? 'url' : 'prefix'} must be a path starting with "/"`;
  return { target, prefix: prefix !== undefined };
}
