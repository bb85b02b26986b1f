// The load generator, in its own process (forked by run.js with an IPC channel), so that its
// CPU never lands in the process being measured. Three modes:
//
//   autocannon (default)  autocannon 8, programmatic API, workers: 0, keep-alive connections
//   new-conn              own client: `connections` loops, each opens a TCP connection, sends
//                         one request with `Connection: close`, reads the whole response, closes
//                         its side (as wrk does for a non-keep-alive response) and starts over.
//                         autocannon has no such mode: its `reconnectRate` drops the response
//                         from its counts, and with a `Connection: close` header it writes the
//                         next request into the closing socket.
//   idle                  own client: opens `connections` keep-alive connections, one request
//                         each, then leaves them idle; on `go`, one more request on every
//                         connection still open (at most `inflight` at once).
//
// Protocol (process.send / 'message'):
//   parent -> child  { type: 'run', mode, url, method, path, body, bodyBytes, headers, requests,
//                      connections, pipelining, warmup, duration, inflight }
//   child  -> parent { type: 'warmed', warmup: <summary> }     after the warm-up (idle: all open)
//   parent -> child  { type: 'go' }                            parent has sampled CPU "before"
//   child  -> parent { type: 'done', result: <autocannon-shaped result> }
//   child  -> parent { type: 'error', message }

import net from 'node:net';
import autocannon from 'autocannon';

function cannon(opts) {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

let spec = null;
let body = undefined;

function baseOpts(durationSec) {
  const o = {
    url: spec.url,
    method: spec.method ?? 'GET',
    connections: spec.connections,
    pipelining: spec.pipelining,
    duration: durationSec,
    workers: 0,
    timeout: 10,
  };
  if (body !== undefined) o.body = body;
  if (spec.headers) o.headers = spec.headers;
  if (spec.requests) o.requests = spec.requests;
  return o;
}

function summary(r) {
  return {
    requests: r.requests.total,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    duration: r.duration,
  };
}

// ---------------------------------------------------------------- own raw HTTP/1.1 client

/**
 * Reads one response from a socket: status, content-length or chunked framing (enough for the
 * origin's and the proxies' answers). Calls done(err, { status, bodyBytes }) once.
 */
class ResponseReader {
  constructor() {
    this.reset();
  }
  reset() {
    this.head = '';
    this.status = 0;
    this.remaining = -1; // body bytes still expected (content-length)
    this.chunked = false;
    this.tail = ''; // chunked: last bytes seen, to find the terminating 0-chunk
    this.bodyBytes = 0;
    this.inBody = false;
  }
  /** Feeds bytes; returns true once the response is complete. */
  push(buf) {
    let off = 0;
    if (!this.inBody) {
      this.head += buf.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.head.length > 65536) throw new Error('response head too large');
        return false;
      }
      const headText = this.head.slice(0, end);
      off = buf.length - (this.head.length - end - 4);
      this.status = Number(headText.slice(9, 12));
      const lower = headText.toLowerCase();
      const cl = lower.match(/\r\ncontent-length:\s*(\d+)/);
      this.chunked = /\r\ntransfer-encoding:[^\r]*chunked/.test(lower);
      this.remaining = cl ? Number(cl[1]) : this.chunked ? -1 : 0;
      this.inBody = true;
    }
    const rest = buf.length - off;
    if (this.chunked) {
      this.bodyBytes += rest;
      this.tail = (this.tail + buf.subarray(off).toString('latin1')).slice(-7);
      return this.tail.endsWith('0\r\n\r\n');
    }
    this.bodyBytes += rest;
    this.remaining -= rest;
    return this.remaining <= 0;
  }
}

function requestHead(method, path, host, keepAlive, bodyLen) {
  let h = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n`;
  if (!keepAlive) h += 'connection: close\r\n';
  if (bodyLen > 0) h += `content-length: ${bodyLen}\r\ncontent-type: application/octet-stream\r\n`;
  return Buffer.from(h + '\r\n', 'latin1');
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** An autocannon-shaped result from latencies (ms) and counters. */
function shapeResult({ latencies, errors, timeouts, non2xx, statusCodeStats, bytes, durationSec, extra }) {
  const sorted = Float64Array.from(latencies).sort();
  const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : NaN;
  const r3 = (v) => Math.round(v * 1000) / 1000;
  return {
    requests: { total: latencies.length },
    duration: durationSec,
    latency: { p50: r3(percentile(sorted, 50)), p99: r3(percentile(sorted, 99)), mean: r3(mean), max: r3(sorted[sorted.length - 1] ?? NaN) },
    throughput: { total: bytes },
    errors,
    timeouts,
    non2xx,
    statusCodeStats,
    ...extra,
  };
}

/** Outcomes of requests made by this process's own clients (new-conn, idle), for shapeResult. */
class Tally {
  latencies = [];
  statusCodeStats = {};
  errors = 0;
  timeouts = 0;
  non2xx = 0;
  bytes = 0;

  /** kind: 'ok' (a whole response in `reader`), 'timeout' or 'error'. */
  record(kind, start, reader) {
    if (kind === 'ok') {
      this.latencies.push(performance.now() - start);
      this.bytes += reader.bodyBytes;
      const s = reader.status;
      this.statusCodeStats[s] = { count: (this.statusCodeStats[s]?.count ?? 0) + 1 };
      if (s < 200 || s > 299) this.non2xx++;
    } else if (kind === 'timeout') this.timeouts++;
    else this.errors++;
  }
}

// ---------------------------------------------------------------- new-conn

async function newConnRun(durationSec) {
  const u = new URL(spec.url);
  const port = Number(u.port);
  const head = requestHead(spec.method ?? 'GET', u.pathname + u.search, u.host, false, body ? body.length : 0);
  const tally = new Tally();
  const t0 = process.hrtime.bigint();
  const end = performance.now() + durationSec * 1000;

  const one = () =>
    new Promise((resolve) => {
      const start = performance.now();
      const reader = new ResponseReader();
      const sock = net.connect({ port, host: u.hostname, noDelay: true });
      let settled = false;
      const finish = (kind) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        tally.record(kind, start, reader);
        resolve();
      };
      const timer = setTimeout(() => finish('timeout'), 10000);
      sock.on('connect', () => {
        sock.write(head);
        if (body) sock.write(body);
      });
      sock.on('data', (d) => {
        try {
          if (reader.push(d)) finish('ok');
        } catch {
          finish('error');
        }
      });
      sock.on('error', () => finish('error'));
      sock.on('close', () => finish('error'));
    });

  const loop = async () => {
    while (performance.now() < end) await one();
  };
  await Promise.all(Array.from({ length: spec.connections }, loop));
  const durationSecReal = Number(process.hrtime.bigint() - t0) / 1e9;
  return shapeResult({ ...tally, durationSec: durationSecReal });
}

// ---------------------------------------------------------------- idle connections

const idle = { socks: [], readers: [], openFailed: 0, openMs: 0 };

/** Opens spec.connections keep-alive connections, one GET each; resolves when all settled. */
async function idleOpen() {
  const u = new URL(spec.url);
  const port = Number(u.port);
  const head = requestHead('GET', u.pathname + u.search, u.host, true, 0);
  const t0 = performance.now();
  let next = 0;
  const openOne = () =>
    new Promise((resolve) => {
      const reader = new ResponseReader();
      const sock = net.connect({ port, host: u.hostname, noDelay: true });
      let settled = false;
      const finish = (ok) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (ok && reader.status === 200) {
          idle.socks.push(sock);
          sock.removeAllListeners('data');
        } else {
          idle.openFailed++;
          sock.destroy();
        }
        resolve();
      };
      const timer = setTimeout(() => finish(false), 10000);
      sock.on('connect', () => sock.write(head));
      sock.on('data', (d) => {
        try {
          if (reader.push(d)) finish(true);
        } catch {
          finish(false);
        }
      });
      sock.on('error', () => finish(false));
      sock.on('close', () => {
        sock.closedByPeer = true;
        finish(false);
      });
    });
  // at most 500 connects in flight: the listen backlog is finite
  const worker = async () => {
    while (next < spec.connections) {
      next++;
      await openOne();
    }
  };
  await Promise.all(Array.from({ length: Math.min(500, spec.connections) }, worker));
  idle.openMs = performance.now() - t0;
}

/** One more GET on every connection still open, at most spec.inflight at once. */
async function idleServe() {
  const u = new URL(spec.url);
  const head = requestHead('GET', u.pathname + u.search, u.host, true, 0);
  const tally = new Tally();
  let closedWhileIdle = 0;
  const t0 = process.hrtime.bigint();
  let next = 0;
  const serveOne = (sock) =>
    new Promise((resolve) => {
      if (sock.closedByPeer || sock.destroyed) {
        closedWhileIdle++;
        tally.errors++;
        resolve();
        return;
      }
      const reader = new ResponseReader();
      const start = performance.now();
      let settled = false;
      const finish = (kind) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.removeAllListeners('data');
        tally.record(kind, start, reader);
        resolve();
      };
      const timer = setTimeout(() => finish('timeout'), 10000);
      sock.on('data', (d) => {
        try {
          if (reader.push(d)) finish('ok');
        } catch {
          finish('error');
        }
      });
      sock.once('close', () => finish('error'));
      sock.write(head);
    });
  const worker = async () => {
    while (next < idle.socks.length) await serveOne(idle.socks[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(spec.inflight ?? 256, idle.socks.length) }, worker));
  const durationSec = Number(process.hrtime.bigint() - t0) / 1e9;
  const res = shapeResult({
    ...tally,
    durationSec,
    extra: { idle: { requested: spec.connections, opened: idle.socks.length, openFailed: idle.openFailed, openMs: idle.openMs, closedWhileIdle } },
  });
  for (const s of idle.socks) s.destroy();
  return res;
}

// ---------------------------------------------------------------- protocol

process.on('message', async (msg) => {
  try {
    if (msg.type === 'run') {
      spec = msg;
      body = spec.bodyBytes ? Buffer.alloc(spec.bodyBytes, 0x78) : spec.body;
      let warm = null;
      if (spec.mode === 'idle') {
        await idleOpen();
        warm = { opened: idle.socks.length, openFailed: idle.openFailed, openMs: idle.openMs };
      } else if (spec.warmup > 0) {
        warm = summary(spec.mode === 'new-conn' ? await newConnRun(spec.warmup) : await cannon(baseOpts(spec.warmup)));
      }
      process.send({ type: 'warmed', warmup: warm });
    } else if (msg.type === 'go') {
      let r;
      if (spec.mode === 'idle') r = await idleServe();
      else if (spec.mode === 'new-conn') r = await newConnRun(spec.duration);
      else r = await cannon(baseOpts(spec.duration));
      // autocannon's result carries histograms and functions: send only plain data
      process.send({ type: 'done', result: JSON.parse(JSON.stringify(r)) }, () => process.disconnect());
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err && err.stack ? err.stack : err) }, () => process.exit(1));
  }
});
