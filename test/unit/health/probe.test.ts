// Active health probes against real HTTP servers on 127.0.0.1: the status range, timeouts,
// refused connections, what the probe sends, and the Prober loop.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { HealthCheckConfig } from '../../../src/config/types.js';
import { probe, Prober, type ProbeResult } from '../../../src/health/probe.js';
import { sleep } from '../../helpers/time.js';

const CHECK: HealthCheckConfig = { path: '/healthz', intervalMs: 100, timeoutMs: 300, rise: 2, fall: 3, expectMin: 200, expectMax: 399 };

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
}

const servers: http.Server[] = [];
afterAll(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

/** A server answering every request with `status()`, or never answering when it returns 0. */
async function server(status: () => number): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const s = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host });
    const code = status();
    if (code === 0) return; // hang
    res.writeHead(code, { 'content-type': 'text/plain' });
    res.end('x');
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, seen };
}

/** A port nothing listens on: listen on port 0, then close. */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves once `cond()` holds, polling every 10 ms; rejects after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}


describe('probe', () => {
  const ONLY_204 = { ...CHECK, expectMin: 204, expectMax: 204 };
  it.each([
    [200, '200-399', CHECK, true, 'status 200'],
    [399, '200-399', CHECK, true, 'status 399'],
    [302, '200-399', CHECK, true, 'status 302'],
    [503, '200-399', CHECK, false, 'status 503, expected 200-399'],
    [404, '200-399', CHECK, false, 'status 404, expected 200-399'],
    [204, '204', ONLY_204, true, 'status 204'],
    [200, '204', ONLY_204, false, 'status 200, expected 204-204'],
  ] as const)('status %i with expect %s', async (status, _expect, check, ok, detail) => {
    const s = await server(() => status);
    const r = await probe('127.0.0.1', s.port, check);
    expect(r).toEqual({ ok, detail });
  });

  it('sends GET of the configured path with a Host header, on a fresh connection each time', async () => {
    const s = await server(() => 200);
    const check = { ...CHECK, path: '/status?full=1' };
    await probe('127.0.0.1', s.port, check);
    await probe('127.0.0.1', s.port, check);
    expect(s.seen).toEqual([
      { method: 'GET', url: '/status?full=1', host: `127.0.0.1:${s.port}` },
      { method: 'GET', url: '/status?full=1', host: `127.0.0.1:${s.port}` },
    ]);
  });

  it('fails with "timeout after" when the backend never answers, within about timeoutMs', async () => {
    const s = await server(() => 0);
    const started = performance.now();
    const r = await probe('127.0.0.1', s.port, { ...CHECK, timeoutMs: 200 });
    const took = performance.now() - started;
    expect(r).toEqual({ ok: false, detail: 'timeout after 200ms' });
    expect(s.seen).toHaveLength(1); // it did connect and ask
    expect(took).toBeGreaterThanOrEqual(195);
    expect(took).toBeLessThan(1000);
  });

  it('fails with ECONNREFUSED on a port nothing listens on', async () => {
    const r = await probe('127.0.0.1', await freePort(), CHECK);
    expect(r.ok).toBe(false);
    expect(r.detail).toBe('connect ECONNREFUSED');
  });
});

describe('Prober', () => {
  it('calls back every interval until stopped', async () => {
    const s = await server(() => 200);
    const results: ProbeResult[] = [];
    const times: number[] = [];
    const p = new Prober('127.0.0.1', s.port, CHECK, null, (r) => {
      results.push(r);
      times.push(performance.now());
    });
    p.start();
    await until(() => results.length >= 4, 2000, 'four probe results');
    p.stop();
    const n = results.length;
    expect(results.every((r) => r.ok && r.detail === 'status 200')).toBe(true);
    // the next probe starts an interval after the last result (timers never fire early)
    for (let k = 1; k < times.length; k++) expect(times[k]! - times[k - 1]!).toBeGreaterThanOrEqual(CHECK.intervalMs - 2);
    await sleep(3 * CHECK.intervalMs);
    expect(results.length).toBe(n);
    expect(s.seen.length).toBe(n);
  });

  it('reports failures too, and a stop during a probe drops its result', async () => {
    let status = 500;
    const s = await server(() => status);
    const results: ProbeResult[] = [];
    const p = new Prober('127.0.0.1', s.port, CHECK, null, (r) => results.push(r));
    p.start();
    await until(() => results.length >= 1, 2000, 'a probe result');
    expect(results[0]).toEqual({ ok: false, detail: 'status 500, expected 200-399' });
    status = 0; // the next probe hangs
    const asked = s.seen.length;
    await until(() => s.seen.length > asked, 2000, 'the next probe to be in flight');
    const n = results.length;
    p.stop();
    await sleep(CHECK.timeoutMs + 100); // its timeout passes: no result, no further probe
    expect(results.length).toBe(n);
    expect(s.seen.length).toBe(asked + 1);
  });

  it('start() twice runs one loop, not two', async () => {
    const s = await server(() => 200);
    let n = 0;
    const p = new Prober('127.0.0.1', s.port, { ...CHECK, intervalMs: 200, timeoutMs: 200 }, null, () => n++);
    p.start();
    p.start();
    await sleep(1000);
    p.stop();
    // one loop: at most 1000 / 200 + 1 probes (two loops would make about twice as many)
    expect(n).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThanOrEqual(6);
    expect(s.seen.length).toBe(n);
  });

  it('stop() before the first probe means no probe at all', async () => {
    const s = await server(() => 200);
    let n = 0;
    const p = new Prober('127.0.0.1', s.port, CHECK, null, () => n++);
    p.start();
    p.stop();
    p.start(); // a stopped prober stays stopped
    await sleep(3 * CHECK.intervalMs);
    expect(n).toBe(0);
    expect(s.seen).toHaveLength(0);
  });
});
