// A bounded load generator in its own process (started by load.ts through fork). argv[2]: JSON
// options {url, concurrency, method, keepAlive, maxRequests, maxDurationMs, body, requestTimeoutMs,
// errorPauseMs}. `concurrency` loops send one request after another until maxRequests have been
// started, maxDurationMs has passed, or the parent sends {type:'stop'}. Every outcome is bucketed
// by its completion time into 100 ms buckets. IPC out: {type:'started', startedAt},
// {type:'snapshot', seq, ...} on request, and one {type:'result', result} at the end.
import http from 'node:http';

const o = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(o.url);
const concurrency = Math.max(1, Number(o.concurrency ?? 8));
const method = String(o.method ?? 'GET');
const keepAlive = o.keepAlive !== false;
const maxRequests = Number(o.maxRequests ?? 10_000);
const maxDurationMs = Number(o.maxDurationMs ?? 10_000);
const requestTimeoutMs = Number(o.requestTimeoutMs ?? 10_000);
const errorPauseMs = Number(o.errorPauseMs ?? 0);
const body = o.body === undefined || o.body === null ? null : Buffer.from(String(o.body));
const BUCKET_MS = 100;
const MAX_FAILURE_RECORDS = 2000;

const agent = new http.Agent({ keepAlive, maxSockets: concurrency });

const startedAt = Date.now();
const deadline = startedAt + maxDurationMs;
let started = 0;
let stopRequested = false;
let stoppedBy = 'count';

const r = {
  startedAt,
  wallMs: 0,
  total: 0,
  ok: 0,
  failed: 0,
  statuses: {},
  errors: {},
  byBackend: {},
  /** Responses that carried `Connection: close`. */
  connectionClose: 0,
  lastOkAt: 0,
  timeline: [],
  failures: [],
  failuresDropped: 0,
  stoppedBy,
};

function bucket(now) {
  const i = Math.floor((now - startedAt) / BUCKET_MS);
  for (let k = r.timeline.length; k <= i; k++) r.timeline.push({ t: k * BUCKET_MS, total: 0, ok: 0, failed: 0, close: 0, byBackend: {} });
  return r.timeline[i];
}

function record(startT, outcome) {
  const now = Date.now();
  const b = bucket(now);
  r.total++;
  b.total++;
  if (outcome.backend !== undefined) {
    r.byBackend[outcome.backend] = (r.byBackend[outcome.backend] ?? 0) + 1;
    b.byBackend[outcome.backend] = (b.byBackend[outcome.backend] ?? 0) + 1;
  }
  if (outcome.close) {
    r.connectionClose++;
    b.close++;
  }
  if (outcome.status !== undefined) r.statuses[outcome.status] = (r.statuses[outcome.status] ?? 0) + 1;
  if (outcome.code !== undefined) r.errors[outcome.code] = (r.errors[outcome.code] ?? 0) + 1;
  const good = outcome.code === undefined && outcome.status >= 200 && outcome.status < 300;
  if (good) {
    r.lastOkAt = now;
    r.ok++;
    b.ok++;
    return true;
  }
  r.failed++;
  b.failed++;
  if (r.failures.length < MAX_FAILURE_RECORDS) {
    r.failures.push({
      at: now,
      t: now - startedAt,
      startT: startT - startedAt,
      durationMs: now - startT,
      kind: outcome.code !== undefined ? 'error' : 'status',
      status: outcome.status,
      code: outcome.code,
      backend: outcome.backend,
      requestId: outcome.requestId,
      reusedSocket: outcome.reused,
    });
  } else r.failuresDropped++;
  return false;
}

function one() {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let settled = false;
    const settle = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(record(t0, outcome));
    };
    const headers = {};
    if (body !== null) headers['content-length'] = body.length;
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, agent, headers },
      (res) => {
        const backend = typeof res.headers['x-backend'] === 'string' ? res.headers['x-backend'] : undefined;
        const requestId = typeof res.headers['x-request-id'] === 'string' ? res.headers['x-request-id'] : undefined;
        const close = /\bclose\b/i.test(String(res.headers.connection ?? ''));
        const base = { status: res.statusCode, backend, requestId, close, reused: req.reusedSocket };
        res.on('error', (e) => settle({ ...base, code: e.code ?? 'RESPONSE_ERROR' }));
        res.on('end', () => settle(res.complete ? base : { ...base, code: 'INCOMPLETE' }));
        res.on('close', () => settle(res.complete ? base : { ...base, code: 'ABORTED' }));
        res.resume();
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      settle({ code: 'TIMEOUT', reused: req.reusedSocket });
    }, requestTimeoutMs);
    req.on('error', (e) => settle({ code: e.code ?? 'ERROR', reused: req.reusedSocket }));
    req.end(body ?? undefined);
  });
}

function more() {
  if (stopRequested) {
    stoppedBy = 'stop';
    return false;
  }
  if (started >= maxRequests) {
    stoppedBy = 'count';
    return false;
  }
  if (Date.now() >= deadline) {
    stoppedBy = 'duration';
    return false;
  }
  return true;
}

async function loop() {
  for (let i = 0; i < maxRequests && more(); i++) {
    started++;
    const good = await one();
    if (!good && errorPauseMs > 0) await new Promise((res) => setTimeout(res, errorPauseMs));
  }
}

function send(msg) {
  if (process.connected) process.send(msg);
}

process.on('message', (m) => {
  if (m === null || typeof m !== 'object') return;
  if (m.type === 'stop') stopRequested = true;
  else if (m.type === 'snapshot') {
    send({ type: 'snapshot', seq: m.seq, elapsedMs: Date.now() - startedAt, total: r.total, ok: r.ok, failed: r.failed, byBackend: r.byBackend });
  }
});
process.on('disconnect', () => process.exit(0));

send({ type: 'started', startedAt });
await Promise.all(Array.from({ length: concurrency }, () => loop()));
r.wallMs = Date.now() - startedAt;
r.stoppedBy = stoppedBy;
agent.destroy();
process.send({ type: 'result', result: r }, () => process.exit(0));
