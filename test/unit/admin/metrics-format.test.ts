// The Prometheus exposition of src/admin/metrics.ts, read back with the strict parser of
// test/helpers/prom.ts: every family has HELP and TYPE, counters end in _total, histograms are
// cumulative and end in +Inf = _count, no series twice, and the values are the buffer's counts.
// The parser itself must fail: a table of bad expositions it rejects.
import { describe, expect, it } from 'vitest';
import { Counters } from '../../../src/admin/counters.js';
import { escapeLabelValue, renderMetrics } from '../../../src/admin/metrics.js';
import { formatProblem, parseConfig, type Config } from '../../../src/config/index.js';
import { layoutFor } from '../../../src/primary/data-plane.js';
import { BackendState, FailureKind, PoolEvent } from '../../../src/shared/layout.js';
import { metric, metricSum, parseExposition } from '../../helpers/prom.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;
const A = 'http://127.0.0.1:3001';
const B = 'http://127.0.0.1:3002';
const C = 'http://127.0.0.1:4001';
const PROC = { cpuSeconds: 1.25, residentBytes: 50_000_000 };

function config(text: string): Config {
  const r = parseConfig(text, 'test.yaml', { availableParallelism: 2 });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

const CONFIG = config(
  lines(
    'workers: 2',
    'pools:',
    `  web: { backends: [${A}, { url: ${B}, weight: 3 }] }`,
    `  api: { backends: [${C}] }`,
    'routes: [{ path_prefix: /api, pool: api }, { pool: web }]',
  ),
);

describe('renderMetrics', () => {
  it('writes the buffer counts as a valid exposition with every promised family', () => {
    const state = layoutFor(CONFIG);
    const counters = new Counters(CONFIG, state, 1_000_000);
    // web/A: 3 answered 200, one 404 passed through, one 502 after a connect failure
    for (let k = 0; k < 3; k++) state.countStatus(0, 200);
    state.countStatus(0, 404);
    state.countStatus(0, 502);
    state.countFailure(0, FailureKind.Connect);
    state.countRetried(0);
    for (let k = 0; k < 6; k++) state.countRequest(0);
    state.recordLatency(0, 800); // <= 1 ms
    state.recordLatency(0, 3000); // <= 5 ms
    state.recordLatency(0, 3000);
    state.recordLatency(0, 20_000_000); // +Inf
    state.countPoolStatus(1, 503);
    state.countPoolEvent(1, PoolEvent.NoBackend);
    state.countNoPoolStatus(404);
    state.countNoPoolStatus(404);
    state.workerRequestStarted(0);
    state.workerRequestStarted(1);
    state.workerRequestStarted(1);
    state.workerRequestFinished(1);
    state.setState(1, BackendState.Draining);
    state.tryAcquireInflight(2, 0);
    // web/A: two WebSockets opened, one closed; 3 messages of 10 bytes to the backend, 5 of 5 GiB in all back
    state.websocketOpened(0);
    state.websocketOpened(0);
    state.websocketClosed(0);
    for (let k = 0; k < 3; k++) state.countWebSocketMessages(0, false, 1, 10);
    // counted in batches: one of 4 messages past 4 GiB (the high word), then one more
    state.countWebSocketMessages(0, true, 4, 4.5 * 1024 ** 3);
    state.countWebSocketMessages(0, true, 1, 0.5 * 1024 ** 3);

    const text = renderMetrics(counters.snapshot(1_010_000), PROC);
    const e = parseExposition(text);
    expect([...e.keys()].sort()).toEqual(
      [
        'corelb_requests_total',
        'corelb_backend_attempts_total',
        'corelb_backend_failures_total',
        'corelb_backend_retries_total',
        'corelb_backend_response_seconds',
        'corelb_backend_inflight',
        'corelb_websockets_open',
        'corelb_websocket_messages_total',
        'corelb_websocket_bytes_total',
        'corelb_backend_up',
        'corelb_backend_state',
        'corelb_backend_weight',
        'corelb_backend_effective_weight',
        'corelb_pool_events_total',
        'corelb_worker_requests_total',
        'corelb_worker_inflight',
        'corelb_process_cpu_seconds_total',
        'corelb_process_resident_memory_bytes',
        'corelb_start_time_seconds',
        'corelb_uptime_seconds',
        'corelb_tls_certificate_expiry_seconds',
        'corelb_config_generation',
        'corelb_config_last_reload_success',
        'corelb_config_last_reload_timestamp_seconds',
      ].sort(),
    );
    for (const f of e.values()) expect(f.help.length, f.name).toBeGreaterThan(10);

    const web = { pool: 'web', backend: A };
    expect(metric(e, 'corelb_requests_total', { ...web, code: '2xx' })).toBe(3);
    expect(metric(e, 'corelb_requests_total', { ...web, code: '4xx' })).toBe(1);
    expect(metric(e, 'corelb_requests_total', { ...web, code: '5xx' })).toBe(1);
    expect(metric(e, 'corelb_requests_total', { pool: 'api', backend: '', code: '5xx' })).toBe(1);
    expect(metric(e, 'corelb_requests_total', { pool: '', backend: '', code: '4xx' })).toBe(2);
    expect(metricSum(e, 'corelb_requests_total')).toBe(8);
    expect(metric(e, 'corelb_websockets_open', web)).toBe(1);
    expect(metric(e, 'corelb_websocket_messages_total', { ...web, direction: 'to_backend' })).toBe(3);
    expect(metric(e, 'corelb_websocket_bytes_total', { ...web, direction: 'to_backend' })).toBe(30);
    expect(metric(e, 'corelb_websocket_messages_total', { ...web, direction: 'to_client' })).toBe(5);
    expect(metric(e, 'corelb_websocket_bytes_total', { ...web, direction: 'to_client' })).toBe(5 * 1024 ** 3); // past 32 bits
    expect(metric(e, 'corelb_backend_attempts_total', web)).toBe(6);
    expect(metric(e, 'corelb_backend_failures_total', { ...web, kind: 'connect' })).toBe(1);
    expect(metricSum(e, 'corelb_backend_failures_total')).toBe(1);
    expect(metric(e, 'corelb_backend_retries_total', web)).toBe(1);
    expect(metric(e, 'corelb_backend_response_seconds_bucket', { ...web, le: '0.001' })).toBe(1);
    expect(metric(e, 'corelb_backend_response_seconds_bucket', { ...web, le: '0.0025' })).toBe(1);
    expect(metric(e, 'corelb_backend_response_seconds_bucket', { ...web, le: '0.005' })).toBe(3);
    expect(metric(e, 'corelb_backend_response_seconds_bucket', { ...web, le: '10' })).toBe(3);
    expect(metric(e, 'corelb_backend_response_seconds_bucket', { ...web, le: '+Inf' })).toBe(4);
    expect(metric(e, 'corelb_backend_response_seconds_count', web)).toBe(4);
    expect(metric(e, 'corelb_backend_response_seconds_sum', web)).toBeCloseTo(20.0068, 6);
    expect(metric(e, 'corelb_backend_inflight', { pool: 'api', backend: C })).toBe(1);
    expect(metric(e, 'corelb_backend_up', web)).toBe(1);
    expect(metric(e, 'corelb_backend_up', { pool: 'web', backend: B })).toBe(0);
    expect(metric(e, 'corelb_backend_state', { pool: 'web', backend: B, state: 'draining' })).toBe(1);
    expect(metricSum(e, 'corelb_backend_state', { pool: 'web', backend: B })).toBe(1);
    expect(metric(e, 'corelb_backend_weight', { pool: 'web', backend: B })).toBe(3);
    expect(metric(e, 'corelb_backend_effective_weight', { pool: 'web', backend: B })).toBe(3);
    expect(metric(e, 'corelb_pool_events_total', { pool: 'api', event: 'no_backend' })).toBe(1);
    expect(metric(e, 'corelb_worker_requests_total', { worker: '1' })).toBe(2);
    expect(metric(e, 'corelb_worker_inflight', { worker: '1' })).toBe(1);
    expect(metric(e, 'corelb_process_cpu_seconds_total')).toBe(1.25);
    expect(metric(e, 'corelb_process_resident_memory_bytes')).toBe(50_000_000);
    expect(metric(e, 'corelb_start_time_seconds')).toBe(1000);
    expect(metric(e, 'corelb_uptime_seconds')).toBe(10);
    expect(metric(e, 'corelb_config_generation')).toBe(1);
    expect(metric(e, 'corelb_config_last_reload_success')).toBe(1);
  });

  it('reports a rejected reload, and the removed backends of a reload keep their counters', () => {
    const state = layoutFor(CONFIG);
    const counters = new Counters(CONFIG, state, 0);
    state.countStatus(0, 200);
    counters.noteReload(false, ['x'], 5000);
    let e = parseExposition(renderMetrics(counters.snapshot(6000), PROC));
    expect(metric(e, 'corelb_config_last_reload_success')).toBe(0);
    expect(metric(e, 'corelb_config_last_reload_timestamp_seconds')).toBe(5);
    const next = config(lines('workers: 2', 'pools:', `  web: { backends: [${B}] }`));
    counters.publish(next, layoutFor(next, 2), 7000);
    counters.noteReload(true, [], 7000);
    e = parseExposition(renderMetrics(counters.snapshot(8000), PROC));
    expect(metric(e, 'corelb_config_last_reload_success')).toBe(1);
    expect(metric(e, 'corelb_config_generation')).toBe(2);
    // A (removed) and the api pool (removed) still have their counters; no gauges for them
    expect(metric(e, 'corelb_requests_total', { pool: 'web', backend: A, code: '2xx' })).toBe(1);
    expect(metric(e, 'corelb_pool_events_total', { pool: 'api', event: 'queued' })).toBe(0);
    expect(() => metric(e, 'corelb_backend_up', { pool: 'web', backend: A })).toThrow(/no series/);
    expect(metric(e, 'corelb_backend_up', { pool: 'web', backend: B })).toBe(1);
  });

  it('escapes label values (backslash, double quote, newline) so that they parse back', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const text = lines('# HELP x_total h', '# TYPE x_total counter', `x_total{v="${escapeLabelValue('a\\b"c\nd')}"} 1`);
    expect(parseExposition(text).get('x_total')!.samples[0]!.labels.v).toBe('a\\b"c\nd');
  });
});

describe('the exposition parser', () => {
  const ok = lines(
    '# HELP a_total A counter.',
    '# TYPE a_total counter',
    'a_total{x="1"} 2',
    'a_total{x="2"} 0',
    '# HELP h A histogram.',
    '# TYPE h histogram',
    'h_bucket{le="0.5"} 1',
    'h_bucket{le="+Inf"} 2',
    'h_sum 1.5',
    'h_count 2',
    '# HELP g A gauge.',
    '# TYPE g gauge',
    'g -1.5e3',
  );

  it('accepts a valid exposition', () => {
    const e = parseExposition(ok);
    expect([...e.keys()]).toEqual(['a_total', 'h', 'g']);
    expect(metric(e, 'g')).toBe(-1500);
    expect(metric(e, 'h_count')).toBe(2);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['a sample before its TYPE', lines('a_total 1', '# HELP a_total x', '# TYPE a_total counter'), /outside its family/],
    ['TYPE without HELP', lines('# TYPE a_total counter', 'a_total 1'), /without a HELP/],
    ['HELP without TYPE', lines('# HELP a_total x', 'a_total 1'), /has no TYPE/],
    ['an unknown TYPE', lines('# HELP a x', '# TYPE a summary', 'a 1'), /TYPE must be one of/],
    ['untyped', lines('# HELP a x', '# TYPE a untyped', 'a 1'), /TYPE must be one of/],
    ['a counter without _total', lines('# HELP a x', '# TYPE a counter', 'a 1'), /must end in _total/],
    ['a gauge named _total', lines('# HELP a_total x', '# TYPE a_total gauge', 'a_total 1'), /must not end in _total/],
    ['a negative counter', lines('# HELP a_total x', '# TYPE a_total counter', 'a_total -1'), /must be a number >= 0/],
    ['a value that is not a number', lines('# HELP a x', '# TYPE a gauge', 'a one'), /is not a number/],
    ['a hex value', lines('# HELP a x', '# TYPE a gauge', 'a 0x10'), /is not a number/],
    ['no value', lines('# HELP a x', '# TYPE a gauge', 'a'), /without a value/],
    ['an invalid metric name', lines('# HELP 1a x', '# TYPE 1a gauge', '1a 1'), /invalid metric name/],
    ['an invalid label name', lines('# HELP a x', '# TYPE a gauge', 'a{b-c="1"} 1'), /invalid label name/],
    ['a reserved label name', lines('# HELP a x', '# TYPE a gauge', 'a{__x="1"} 1'), /reserved/],
    ['an unquoted label value', lines('# HELP a x', '# TYPE a gauge', 'a{b=1} 1'), /not quoted/],
    ['an unknown escape', lines('# HELP a x', '# TYPE a gauge', 'a{b="\\t"} 1'), /invalid escape/],
    ['an unclosed label value', lines('# HELP a x', '# TYPE a gauge', 'a{b="1} 1'), /never closed|expected/],
    ['a duplicate label', lines('# HELP a x', '# TYPE a gauge', 'a{b="1",b="2"} 1'), /duplicate label/],
    ['a duplicate series', lines('# HELP a x', '# TYPE a gauge', 'a{b="1"} 1', 'a{b="1"} 2'), /duplicate series/],
    ['a duplicate series (labels reordered)', lines('# HELP a x', '# TYPE a gauge', 'a{b="1",c="2"} 1', 'a{c="2",b="1"} 2'), /duplicate series/],
    ['a family declared twice', lines('# HELP a x', '# TYPE a gauge', 'a 1', '# HELP b x', '# TYPE b gauge', 'b 1', '# HELP a x'), /seen before/],
    ['a family split by another', lines('# HELP a x', '# TYPE a gauge', 'a 1', '# HELP b x', '# TYPE b gauge', 'a{c="1"} 1'), /outside its family/],
    ['trailing garbage', lines('# HELP a x', '# TYPE a gauge', 'a 1 2 3'), /trailing/],
    ['an empty line', lines('# HELP a x', '# TYPE a gauge', '', 'a 1'), /empty line/],
    ['no final newline', '# HELP a x\n# TYPE a gauge\na 1', /end with a newline/],
    ['buckets not cumulative', lines('# HELP h x', '# TYPE h histogram', 'h_bucket{le="1"} 3', 'h_bucket{le="+Inf"} 2', 'h_sum 1', 'h_count 2'), /not cumulative/],
    ['no +Inf bucket', lines('# HELP h x', '# TYPE h histogram', 'h_bucket{le="1"} 2', 'h_sum 1', 'h_count 2'), /le="\+Inf"/],
    ['+Inf bucket not equal to _count', lines('# HELP h x', '# TYPE h histogram', 'h_bucket{le="+Inf"} 2', 'h_sum 1', 'h_count 3'), /differs from _count/],
    ['le bounds out of order', lines('# HELP h x', '# TYPE h histogram', 'h_bucket{le="2"} 1', 'h_bucket{le="1"} 1', 'h_bucket{le="+Inf"} 1', 'h_sum 1', 'h_count 1'), /not ascending/],
    ['a bucket without le', lines('# HELP h x', '# TYPE h histogram', 'h_bucket 1', 'h_sum 1', 'h_count 1'), /without an le/],
    ['a histogram without _sum', lines('# HELP h x', '# TYPE h histogram', 'h_bucket{le="+Inf"} 1', 'h_count 1'), /no _sum/],
    ['a histogram sample of another name', lines('# HELP h x', '# TYPE h histogram', 'h_total 1'), /outside its family/],
  ];
  it.each(bad)('rejects %s', (_what, text, message) => {
    expect(() => parseExposition(text)).toThrow(message);
  });
});
