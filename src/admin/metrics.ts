// Owns the Prometheus text exposition (format 0.0.4) of a Snapshot: metric names, HELP and TYPE
// lines, labels and their escaping. Every family is written once, with all of its series
// together; counters end in _total, units are seconds and bytes.

import { stateName } from '../health/backend-health.js';
import { BackendState, LATENCY_BUCKETS_US } from '../shared/layout.js';
import type { CacheFigures } from './cache.js';
import type { BackendCounters, Snapshot } from './counters.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label names of FailureKind, in its order. */
export const FAILURE_LABELS = ['connect', 'connect_timeout', 'reset', 'response_timeout', 'invalid_response', 'status_5xx'] as const;
/** Label names of PoolEvent, in its order. */
export const POOL_EVENT_LABELS = ['no_backend', 'queued', 'queue_timeout', 'retry_budget_exhausted'] as const;
export const STATUS_LABELS = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const WS_DIRECTIONS = ['to_backend', 'to_client'] as const;
const STATES = [BackendState.Up, BackendState.SlowStart, BackendState.Draining, BackendState.Down] as const;
/** Bucket bounds in seconds, as written in `le`. */
const LE = [...LATENCY_BUCKETS_US.map((us) => formatNumber(us / 1e6)), '+Inf'];

/** Process figures read by the caller (the primary's process is the whole data plane). */
export interface ProcessFigures {
  /** User + system CPU of every thread. */
  readonly cpuSeconds: number;
  readonly residentBytes: number;
}

type Labels = Readonly<Record<string, string | number>>;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

class Exposition {
  private readonly out: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: Labels, value: number): void {
    const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`);
    this.out.push(`${name}${parts.length === 0 ? '' : `{${parts.join(',')}}`} ${formatNumber(value)}`);
  }

  text(): string {
    return this.out.join('\n') + '\n';
  }
}

interface Series {
  readonly pool: string;
  readonly backend: string;
  readonly c: BackendCounters;
}

export function renderMetrics(s: Snapshot, proc: ProcessFigures, cache: CacheFigures | null = null): string {
  const x = new Exposition();
  const counted: Series[] = [];
  for (const p of s.pools) for (const b of p.backends) counted.push({ pool: p.name, backend: b.url, c: b });
  for (const b of s.removedBackends) counted.push({ pool: b.pool, backend: b.url, c: b });
  const pools = [...s.pools.map((p) => ({ name: p.name, events: p.events, status: p.status })), ...s.removedPools];

  x.family('corelb_requests_total', 'counter', 'Client requests answered, once each, by status class: backend is the one that answered (or failed last); "" when none did (pool="" before a pool was chosen).');
  for (const { pool, backend, c } of counted) STATUS_LABELS.forEach((code, k) => x.sample('corelb_requests_total', { pool, backend, code }, c.status[k]!));
  for (const p of pools) STATUS_LABELS.forEach((code, k) => x.sample('corelb_requests_total', { pool: p.name, backend: '', code }, p.status[k]!));
  STATUS_LABELS.forEach((code, k) => x.sample('corelb_requests_total', { pool: '', backend: '', code }, s.noPool[k]!));

  x.family('corelb_backend_attempts_total', 'counter', 'Requests sent to a backend, retries included.');
  for (const { pool, backend, c } of counted) x.sample('corelb_backend_attempts_total', { pool, backend }, c.attempts);

  x.family('corelb_backend_failures_total', 'counter', 'Failed attempts on a backend, by kind.');
  for (const { pool, backend, c } of counted) FAILURE_LABELS.forEach((kind, k) => x.sample('corelb_backend_failures_total', { pool, backend, kind }, c.failures[k]!));

  x.family('corelb_backend_retries_total', 'counter', 'Requests retried on another backend after failing on this one.');
  for (const { pool, backend, c } of counted) x.sample('corelb_backend_retries_total', { pool, backend }, c.retried);

  x.family('corelb_backend_response_seconds', 'histogram', 'Time from sending a request to a backend to its response headers.');
  for (const { pool, backend, c } of counted) {
    let cumulative = 0;
    c.buckets.forEach((n, k) => {
      cumulative += n;
      x.sample('corelb_backend_response_seconds_bucket', { pool, backend, le: LE[k]! }, cumulative);
    });
    x.sample('corelb_backend_response_seconds_sum', { pool, backend }, c.sumMicros / 1e6);
    x.sample('corelb_backend_response_seconds_count', { pool, backend }, cumulative);
  }

  x.family('corelb_websockets_open', 'gauge', 'Proxied WebSockets open to a backend, across all workers.');
  for (const { pool, backend, c } of counted) x.sample('corelb_websockets_open', { pool, backend }, c.wsOpened - c.wsClosed);
  x.family('corelb_websocket_messages_total', 'counter', 'WebSocket messages relayed, by direction (to_backend, to_client).');
  for (const { pool, backend, c } of counted) WS_DIRECTIONS.forEach((direction, d) => x.sample('corelb_websocket_messages_total', { pool, backend, direction }, c.wsMessages[d]!));
  x.family('corelb_websocket_bytes_total', 'counter', 'Payload bytes of the WebSocket messages relayed, by direction.');
  for (const { pool, backend, c } of counted) WS_DIRECTIONS.forEach((direction, d) => x.sample('corelb_websocket_bytes_total', { pool, backend, direction }, c.wsBytes[d]!));

  x.family('corelb_backend_inflight', 'gauge', 'Requests in flight to a backend, across all workers.');
  for (const p of s.pools) for (const b of p.backends) x.sample('corelb_backend_inflight', { pool: p.name, backend: b.url }, b.inflight);

  x.family('corelb_backend_up', 'gauge', '1 when the backend takes new requests (up or slow-start), else 0.');
  for (const p of s.pools) {
    for (const b of p.backends) x.sample('corelb_backend_up', { pool: p.name, backend: b.url }, b.state === BackendState.Up || b.state === BackendState.SlowStart ? 1 : 0);
  }

  x.family('corelb_backend_state', 'gauge', 'The backend state: 1 for the current one (up, slow-start, draining, down).');
  for (const p of s.pools) {
    for (const b of p.backends) for (const st of STATES) x.sample('corelb_backend_state', { pool: p.name, backend: b.url, state: stateName(st) }, b.state === st ? 1 : 0);
  }

  x.family('corelb_backend_weight', 'gauge', 'Configured weight (or the admin override).');
  for (const p of s.pools) for (const b of p.backends) x.sample('corelb_backend_weight', { pool: p.name, backend: b.url }, b.weight);

  x.family('corelb_backend_effective_weight', 'gauge', 'Weight balancers use now: lower than the weight while slow start ramps.');
  for (const p of s.pools) for (const b of p.backends) x.sample('corelb_backend_effective_weight', { pool: p.name, backend: b.url }, b.effectiveWeight);

  x.family('corelb_pool_events_total', 'counter', 'Pool events: no backend available (503), queued for a slot, queue timeout (503), retry refused by the retry budget.');
  for (const p of pools) POOL_EVENT_LABELS.forEach((event, k) => x.sample('corelb_pool_events_total', { pool: p.name, event }, p.events[k]!));

  x.family('corelb_worker_requests_total', 'counter', 'Client requests accepted by a worker thread.');
  for (const w of s.workers) x.sample('corelb_worker_requests_total', { worker: w.id }, w.requests);

  x.family('corelb_worker_inflight', 'gauge', 'Client requests in flight in a worker thread.');
  for (const w of s.workers) x.sample('corelb_worker_inflight', { worker: w.id }, w.inflight);

  x.family('corelb_process_cpu_seconds_total', 'counter', 'User and system CPU time of the data plane process, all threads.');
  x.sample('corelb_process_cpu_seconds_total', {}, proc.cpuSeconds);
  x.family('corelb_process_resident_memory_bytes', 'gauge', 'Resident set size of the data plane process.');
  x.sample('corelb_process_resident_memory_bytes', {}, proc.residentBytes);
  x.family('corelb_start_time_seconds', 'gauge', 'When the data plane started, seconds since the Unix epoch.');
  x.sample('corelb_start_time_seconds', {}, s.startedAt / 1000);
  x.family('corelb_uptime_seconds', 'gauge', 'Seconds since the data plane started.');
  x.sample('corelb_uptime_seconds', {}, (s.time - s.startedAt) / 1000);

  x.family('corelb_tls_certificate_expiry_seconds', 'gauge', 'When a TLS listener\'s certificate expires (its notAfter), seconds since the Unix epoch; one series per DNS name it serves. Alert on this minus time().');
  for (const c of s.certificates) x.sample('corelb_tls_certificate_expiry_seconds', { listener: c.listener, name: c.name }, c.notAfterMs / 1000);

  x.family('corelb_config_generation', 'gauge', 'Generation of the configuration in effect (1 at start, +1 per reload or weight change).');
  x.sample('corelb_config_generation', {}, s.generation);
  x.family('corelb_config_last_reload_success', 'gauge', '1 when the last reload was applied (or none was tried), 0 when it was rejected.');
  x.sample('corelb_config_last_reload_success', {}, s.lastReload === null || s.lastReload.ok ? 1 : 0);
  x.family('corelb_config_last_reload_timestamp_seconds', 'gauge', 'When the last reload was tried (the start time before any), seconds since the Unix epoch.');
  x.sample('corelb_config_last_reload_timestamp_seconds', {}, (s.lastReload?.at ?? s.startedAt) / 1000);
  if (cache !== null) {
    x.family('corelb_cache_requests_total', 'counter', 'Requests to pools and routes with cache: true, by result: hit, miss, stale (a stale answer served), revalidated (a 304 refreshed it), bypass (not cacheable: method, Range, no-store, a body).');
    for (const r of cache.requests) x.sample('corelb_cache_requests_total', { pool: r.pool, result: r.result }, r.count);
    x.family('corelb_cache_bytes', 'gauge', 'Bytes of the answers stored in the shared cache (keys and heads included).');
    x.sample('corelb_cache_bytes', {}, cache.bytes);
    x.family('corelb_cache_entries', 'gauge', 'Answers stored in the shared cache.');
    x.sample('corelb_cache_entries', {}, cache.entries);
    x.family('corelb_cache_evictions_total', 'counter', 'Answers evicted from the shared cache to make room (least recently used first).');
    x.sample('corelb_cache_evictions_total', {}, cache.evictions);
  }
  return x.text();
}
