// CPU cost of the upstream HTTP client alone, without the proxy's server side.
//
//   node native-free-bench/upstream-client.js                 (starts its own origin)
//   node native-free-bench/upstream-client.js --origin http://127.0.0.1:PORT [--json] [--quick]
//        [--requests N] [--max-seconds S] [--warmup-requests N] [--concurrency N] [--dist DIR]
//
// Each client runs in a fresh child process (this file with --client NAME) so JIT state, GC
// heap and sockets of one never help or hurt the other. In that process: keep `concurrency`
// (64) requests in flight over as many keep-alive connections to the origin, GET / (2-byte
// body, read fully), first a warm-up, then `requests` (200,000) measured requests, stopping
// early after `max-seconds` (20). CPU = process.cpuUsage() delta (user+system, all threads of
// the process) over the measured requests / requests completed.
//
// Clients:
//   undici   undici.Pool({ connections: 64, pipelining: 1 }), pool.request({ path: '/', method: 'GET' }),
//            body read with body.text()
//   corelb   dist/upstream/pool.js UpstreamPool, driven the way the worker drives it: an Exchange
//            per request, pool.acquire(exchange, false) -> onUpstreamReady(conn) -> conn.write(head),
//            conn.endRequest() -> onResponseHead/Body/End; the connection recycles itself.
//   raw-floor  NOT a client: 64 bare net.Sockets that write a fixed head and count bytes up to
//            the known response length (learnt from one probe), no parsing at all. The socket
//            cost alone; what any real client pays on top of it is its parsing and bookkeeping.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, REPO_ROOT, eachFlag, fmt, startOrigin } from './lib.js';

const CLIENTS = ['undici', 'corelb', 'raw-floor'];

function parseArgs(argv) {
  const o = {
    client: null,
    origin: null,
    json: false,
    quick: false,
    requests: 200_000,
    maxSeconds: 20,
    warmupRequests: 20_000,
    concurrency: 64,
    dist: path.join(REPO_ROOT, 'dist'),
  };
  let requestsSet = false;
  let warmSet = false;
  eachFlag(argv, (a, next) => {
    if (a === '--client') o.client = next();
    else if (a === '--origin') o.origin = next();
    else if (a === '--json') o.json = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--requests') (o.requests = Number(next())), (requestsSet = true);
    else if (a === '--max-seconds') o.maxSeconds = Number(next());
    else if (a === '--warmup-requests') (o.warmupRequests = Number(next())), (warmSet = true);
    else if (a === '--concurrency') o.concurrency = Number(next());
    else if (a === '--dist') o.dist = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node native-free-bench/upstream-client.js [--origin URL] [--json] [--quick] [--requests N] [--max-seconds S] [--warmup-requests N] [--concurrency N] [--dist DIR]\n');
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  });
  if (o.quick) {
    if (!requestsSet) o.requests = 60_000;
    if (!warmSet) o.warmupRequests = 10_000;
  }
  for (const k of ['requests', 'maxSeconds', 'concurrency']) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) throw new Error(`--${k}: must be a positive number`);
  }
  return o;
}

// ------------------------------------------------------------------ the closed-loop driver

/**
 * Keep `concurrency` requests in flight until `count` have completed or `deadline` (ms epoch)
 * passed. `issue(done)` starts one request and calls `done(ok)` exactly once when its response
 * body has been read completely (or it failed).
 */
function closedLoop(issue, count, concurrency, deadline) {
  return new Promise((resolve) => {
    let started = 0;
    let completed = 0;
    let errors = 0;
    let inflight = 0;
    let finished = false;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const check = setInterval(() => {}, 1000); // keeps the loop alive while a client unrefs sockets
    const done = (ok) => {
      inflight--;
      completed++;
      if (!ok) errors++;
      pump();
    };
    function pump() {
      if (finished) return;
      while (inflight < concurrency && started < count && (started & 1023 || Date.now() < deadline)) {
        started++;
        inflight++;
        issue(done);
      }
      if (inflight === 0) {
        finished = true;
        const cpu = process.cpuUsage(cpu0);
        const sec = Number(process.hrtime.bigint() - t0) / 1e9;
        clearInterval(check);
        resolve({ completed, errors, seconds: sec, cpuMicros: cpu.user + cpu.system, userMicros: cpu.user, systemMicros: cpu.system });
      }
    }
    pump();
  });
}

// ------------------------------------------------------------------ clients

async function makeUndici(originUrl, concurrency) {
  const { Pool } = await import('undici');
  const pool = new Pool(originUrl, { connections: concurrency, pipelining: 1 });
  const opts = { path: '/', method: 'GET' };
  const issue = (done) => {
    pool.request(opts).then(
      ({ statusCode, body }) =>
        body.text().then(
          (text) => done(statusCode === 200 && text === 'ok'),
          () => done(false),
        ),
      () => done(false),
    );
  };
  return { issue, close: () => pool.close() };
}

async function makeCorelb(originUrl, concurrency, dist) {
  const poolFile = path.join(dist, 'upstream', 'pool.js');
  if (!existsSync(poolFile)) throw new Error(`${poolFile} not found (run npm run build)`);
  const { UpstreamPool } = await import(pathToFileURL(poolFile).href);
  const u = new URL(originUrl);
  const host = u.hostname;
  const port = Number(u.port);
  const pool = new UpstreamPool(host, port, { connectTimeoutMs: 2000, idleTimeoutMs: 60000 });
  const authority = `${host}:${port}`;

  // One object per request, as the proxy's per-request object: it is the Exchange (and the
  // ResponseSink the connection forwards parser events to).
  class Exchange {
    constructor(done) {
      this.done = done;
      this.status = 0;
      this.bytes = 0;
      this.finished = false;
    }
    onUpstreamReady(conn) {
      // The request head is built per request, like the proxy (which copies method, path and
      // headers from the client request); no body for GET.
      conn.write('GET / HTTP/1.1\r\nhost: ' + authority + '\r\nconnection: keep-alive\r\n\r\n');
      conn.endRequest();
    }
    onUpstreamError() {
      this.end(false);
    }
    onUpstreamDrain() {}
    batch(fn) {
      fn(); // no uWS client response here: nothing to batch
    }
    onResponseHead(head) {
      this.status = head.status;
    }
    onResponseBody(chunk) {
      this.bytes += chunk.length;
    }
    onResponseEnd() {
      this.end(this.status === 200 && this.bytes === 2);
    }
    onResponseInvalid() {
      this.end(false);
    }
    end(ok) {
      if (this.finished) return;
      this.finished = true;
      // Next request after the parser callback has returned (the connection is already back
      // in the pool), as when the proxy's next client request arrives.
      queueMicrotask(() => this.done(ok));
    }
  }
  const issue = (done) => {
    pool.acquire(new Exchange(done), false);
  };
  return { issue, close: () => pool.closeAll() };
}

async function makeRawFloor(originUrl, concurrency) {
  const net = await import('node:net');
  const u = new URL(originUrl);
  const host = u.hostname;
  const port = Number(u.port);
  const head = Buffer.from('GET / HTTP/1.1\r\nhost: ' + host + ':' + port + '\r\nconnection: keep-alive\r\n\r\n', 'latin1');
  // Learn the exact response size once (uWS's Date header has a fixed width).
  const size = await new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => s.write(head));
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /content-length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
      if (!m) return reject(new Error('raw-floor: probe response without content-length'));
      const total = end + 4 + Number(m[1]);
      if (buf.length >= total) {
        s.destroy();
        resolve(total);
      }
    });
    s.on('error', reject);
  });
  const idle = [];
  const sockets = [];
  function makeConn() {
    const s = net.connect({ host, port, noDelay: true });
    const c = { s, got: 0, done: null };
    s.on('data', (d) => {
      c.got += d.length;
      if (c.got >= size) {
        const ok = c.got === size;
        c.got = 0;
        const done = c.done;
        c.done = null;
        idle.push(c);
        queueMicrotask(() => done(ok));
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (c.done) {
        const done = c.done;
        c.done = null;
        done(false);
      }
    });
    sockets.push(c);
    return c;
  }
  const issue = (done) => {
    const c = idle.pop() ?? (sockets.length < concurrency ? makeConn() : null);
    if (c === null) return done(false);
    c.done = done;
    c.s.write(head);
  };
  return {
    issue,
    close: () => {
      for (const c of sockets) c.s.destroy();
    },
  };
}

async function runClient(o) {
  const factories = {
    undici: () => makeUndici(o.origin, o.concurrency),
    corelb: () => makeCorelb(o.origin, o.concurrency, o.dist),
    'raw-floor': () => makeRawFloor(o.origin, o.concurrency),
  };
  const make = factories[o.client];
  if (!make) throw new Error(`unknown client ${o.client}; known: ${CLIENTS.join(', ')}`);
  const client = await make();
  const start = Date.now();
  const hardDeadline = start + o.maxSeconds * 1000;
  let warm = null;
  if (o.warmupRequests > 0) warm = await closedLoop(client.issue, o.warmupRequests, o.concurrency, Math.min(hardDeadline, start + 10000));
  const r = await closedLoop(client.issue, o.requests, o.concurrency, hardDeadline);
  await client.close();
  return {
    client: o.client,
    requests: r.completed,
    errors: r.errors,
    seconds: r.seconds,
    rps: r.completed / r.seconds,
    cpuUsPerReq: r.cpuMicros / r.completed,
    userUsPerReq: r.userMicros / r.completed,
    systemUsPerReq: r.systemMicros / r.completed,
    cappedByTime: r.completed < o.requests,
    warmup: warm && { requests: warm.completed, errors: warm.errors },
  };
}

// ------------------------------------------------------------------ parent

function runChild(o, client) {
  return new Promise((resolve) => {
    const args = [
      path.join(BENCH_DIR, 'upstream-client.js'),
      '--client', client,
      '--origin', o.origin,
      '--requests', String(o.requests),
      '--max-seconds', String(o.maxSeconds),
      '--warmup-requests', String(o.warmupRequests),
      '--concurrency', String(o.concurrency),
      '--dist', o.dist,
    ];
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    // warm-up (<= 10 s) + measured (<= max-seconds) + start-up slack
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.maxSeconds + 25) * 1000);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop();
      try {
        const r = JSON.parse(line);
        resolve(r);
      } catch {
        const why = (err.trim().split('\n').find((l) => /Error|error/.test(l)) ?? err.trim().split('\n').pop() ?? `exit ${code} ${sig ?? ''}`).trim();
        resolve({ client, unavailable: why.slice(0, 300) });
      }
    });
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.client) {
    const r = await runClient(o);
    process.stdout.write(JSON.stringify(r) + '\n');
    // Sockets of a closed pool may linger a moment; the result is out.
    process.exit(0);
  }

  let origin = null;
  if (!o.origin) {
    origin = await startOrigin();
    o.origin = origin.url;
  }
  const clients = [];
  try {
    for (const c of CLIENTS) {
      if (!o.json) process.stdout.write(`${c} ...\n`);
      clients.push(await runChild(o, c));
    }
  } finally {
    if (origin) await origin.stop();
  }
  const by = (n) => clients.find((c) => c.client === n && !c.unavailable);
  const u = by('undici');
  const c = by('corelb');
  const result = {
    origin: o.origin,
    concurrency: o.concurrency,
    requestsTarget: o.requests,
    maxSeconds: o.maxSeconds,
    warmupRequests: o.warmupRequests,
    cpuSource: 'process.cpuUsage() delta (user+system, whole client process) over the measured requests',
    clients,
    ratio: u && c ? c.cpuUsPerReq / u.cpuUsPerReq : null,
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  process.stdout.write(
    `\nupstream client alone: ${o.concurrency} in flight over ${o.concurrency} keep-alive connections, GET / (2 B), ` +
      `${o.warmupRequests} warm-up + up to ${o.requests} requests (max ${o.maxSeconds} s), CPU from process.cpuUsage()\n\n`,
  );
  process.stdout.write('| client | requests | req/s | CPU µs/request | user µs | sys µs | errors |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const r of clients) {
    if (r.unavailable) process.stdout.write(`| ${r.client} | - | - | unavailable: ${r.unavailable} | | | |\n`);
    else
      process.stdout.write(
        `| ${r.client} | ${r.requests}${r.cappedByTime ? ' (time cap)' : ''} | ${fmt(r.rps, 0)} | ${fmt(r.cpuUsPerReq, 2)} | ${fmt(r.userUsPerReq, 2)} | ${fmt(r.systemUsPerReq, 2)} | ${r.errors} |\n`,
      );
  }
  if (result.ratio) process.stdout.write(`\ncorelb / undici CPU per request: ${fmt(result.ratio, 2)}x\n`);
  const f = by('raw-floor');
  if (c && f) process.stdout.write(`corelb / raw-floor CPU per request: ${fmt(c.cpuUsPerReq / f.cpuUsPerReq, 2)}x (raw-floor = bare sockets, no parsing)\n`);
}

main().catch((err) => {
  process.stderr.write(`upstream-client: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
