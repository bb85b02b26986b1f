// Owns the `cache` section (the shared response store: size, max_object, default_ttl,
// stale_if_error, stale_while_revalidate) and the check that a pool or route with `cache: true` has a store to use.

import { BLOCK } from '../cache/store.js';
import type { CacheConfig } from './types.js';
import { parseDuration, parseSize } from './units.js';
import type { Field, Walk } from './walk.js';

export const CACHE_KEYS = ['size', 'max_object', 'default_ttl', 'stale_if_error', 'stale_while_revalidate'] as const;

export const CACHE_DEFAULTS = Object.freeze<CacheConfig>({ sizeBytes: 256 * 1024 * 1024, maxObjectBytes: 8 * 1024 * 1024, defaultTtlMs: 0, staleIfErrorMs: 0, staleWhileRevalidateMs: 0 });

/** The store's counters are 32-bit: 1gb of blocks at most. */
const MAX_SIZE = 1024 * 1024 * 1024;
const MIN_SIZE = 16 * BLOCK;

/** Absent: no store (null). An empty `cache:` is every default. */
export function validateCache(walk: Walk, f: Field | undefined): CacheConfig | null {
  if (f === undefined) return null;
  if (walk.isNull(f)) return CACHE_DEFAULTS;
  const e = walk.map(f, CACHE_KEYS);
  if (e === undefined) return null;
  const sizeField = e.get('size');
  const maxField = e.get('max_object');
  const sizeBytes = sizeField === undefined ? CACHE_DEFAULTS.sizeBytes : bytes(walk, sizeField, '256mb', MIN_SIZE, MAX_SIZE);
  const maxObjectBytes = maxField === undefined ? Math.min(CACHE_DEFAULTS.maxObjectBytes, sizeBytes) : bytes(walk, maxField, '8mb', 1, MAX_SIZE);
  if (maxField !== undefined && maxObjectBytes > sizeBytes) walk.report(maxField.at, maxField.path, `must not be larger than cache.size (${sizeBytes} bytes)`);
  return {
    sizeBytes,
    maxObjectBytes,
    defaultTtlMs: duration(walk, e.get('default_ttl')),
    staleIfErrorMs: duration(walk, e.get('stale_if_error')),
    staleWhileRevalidateMs: duration(walk, e.get('stale_while_revalidate')),
  };
}

function bytes(walk: Walk, f: Field, example: string, min: number, max: number): number {
  const v = walk.scalar(f, `a size like "${example}"`);
  if (v === undefined) return min;
  const n = parseSize(v);
  if (typeof n === 'string') walk.report(f.at, f.path, n);
  else if (n < min || n > max) walk.report(f.at, f.path, `must be from ${min} bytes to 1gb, got ${n} bytes`);
  else return n;
  return min;
}

/** A duration, or 0 written bare ("0" or 0): off. */
function duration(walk: Walk, f: Field | undefined): number {
  if (f === undefined) return 0;
  const v = walk.scalar(f, 'a duration like "10m", or 0');
  if (v === undefined || v === 0 || v === '0') return 0;
  const ms = parseDuration(v);
  if (typeof ms === 'string') {
    walk.report(f.at, f.path, ms);
    return 0;
  }
  return ms;
}

/** `cache: true | false` on a pool or route; reported when true without a top-level `cache`. */
export function validateCacheSwitch(walk: Walk, f: Field | undefined, hasStore: boolean): boolean {
  if (f === undefined) return false;
  const on = walk.boolean(f) ?? false;
  if (on && !hasStore) walk.report(f.at, f.path, 'needs the top-level cache section (the shared store: cache: { size: 256mb })');
  return on;
}
