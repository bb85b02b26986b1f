// Owns the JSON shape of `GET /status` (and of each `/events` message): the Snapshot with names
// instead of enum numbers, status classes and failure kinds as named fields, seconds instead of
// microseconds. The dashboard reads exactly this.

import { stateName } from '../health/backend-health.js';
import { LATENCY_BUCKETS_US } from '../shared/layout.js';
import type { BackendCounters, PoolCounters, Snapshot } from './counters.js';
import type { CacheFigures } from './cache.js';
import { FAILURE_LABELS, POOL_EVENT_LABELS, STATUS_LABELS, type ProcessFigures } from './metrics.js';

function named(labels: readonly string[], values: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  labels.forEach((l, k) => (out[l] = values[k]!));
  return out;
}

function counters(c: BackendCounters): Record<string, unknown> {
  const count = c.buckets.reduce((a, b) => a + b, 0);
  return {
    requests: named(STATUS_LABELS, c.status),
    attempts: c.attempts,
    failures: named(FAILURE_LABELS, c.failures),
    retried: c.retried,
    // non-cumulative counts per bucket of `latencyBucketsSeconds` (the last one is +Inf)
    latency: { buckets: c.buckets, count, sumSeconds: c.sumMicros / 1e6 },
  };
}

function poolCounters(p: PoolCounters): Record<string, unknown> {
  return { requestsWithoutBackend: named(STATUS_LABELS, p.status), events: named(POOL_EVENT_LABELS, p.events) };
}

export function statusJson(s: Snapshot, proc: ProcessFigures, cache: CacheFigures | null = null): Record<string, unknown> {
  return {
    time: s.time,
    startedAt: s.startedAt,
    uptimeSeconds: (s.time - s.startedAt) / 1000,
    generation: s.generation,
    lastReload: s.lastReload,
    process: { cpuSeconds: proc.cpuSeconds, residentBytes: proc.residentBytes },
    latencyBucketsSeconds: LATENCY_BUCKETS_US.map((us) => us / 1e6),
    workers: s.workers,
    requestsBeforePool: named(STATUS_LABELS, s.noPool),
    pools: s.pools.map((p) => ({
      name: p.name,
      algorithm: p.algorithm,
      ...poolCounters(p),
      backends: p.backends.map((b) => ({
        url: b.url,
        state: stateName(b.state),
        weight: b.weight,
        effectiveWeight: b.effectiveWeight,
        inflight: b.inflight,
        ...counters(b),
      })),
    })),
    certificates: s.certificates.map((c) => ({ ...c, expiresInSeconds: Math.floor((c.notAfterMs - s.time) / 1000) })),
    removed: {
      pools: s.removedPools.map((p) => ({ name: p.name, ...poolCounters(p) })),
      backends: s.removedBackends.map((b) => ({ pool: b.pool, url: b.url, ...counters(b) })),
    },
    cache,
  };
}
