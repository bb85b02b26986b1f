// Balancing across workers, end to end: exact smooth weighted round-robin counts with two
// workers sharing one cursor, and least-connections steering away from a slow backend.
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { corelbConfig, startCorelb } from '../helpers/corelb.js';
import { startOrigin, type Origin } from '../helpers/origins.js';
import { stopEverything } from '../helpers/cleanup.js';

afterAll(stopEverything);

/** Origins that answer their own name at once. */
async function namedOrigins(n: number): Promise<Origin[]> {
  const out: Origin[] = [];
  for (let k = 0; k < n; k++) {
    out.push(
      await startOrigin((req, res) => {
        req.resume();
        req.on('end', () => res.end(String(k)));
      }),
    );
  }
  return out;
}

/** `total` GETs, `concurrency` at a time over keep-alive connections (so both workers serve). */
async function load(url: string, total: number, concurrency: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses: number[] = [];
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses.push(res.statusCode ?? 0);
          resolve();
        });
      });
      req.on('error', reject);
      req.setTimeout(20_000, () => req.destroy(new Error('request timed out')));
    });
  const lane = async (): Promise<void> => {
    while (next < total) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  agent.destroy();
  return statuses;
}

describe('round-robin across workers', () => {
  it.each([
    { name: 'equal weights, 300 requests', weights: [1, 1, 1], total: 300 },
    { name: 'weights 5:3:1, 900 requests', weights: [5, 3, 1], total: 900 },
  ])('$name: counts match the weights exactly with workers: 2', async ({ weights, total }) => {
    const origins = await namedOrigins(weights.length);
    const proxy = await startCorelb(
      corelbConfig({
        workers: 2,
        log: { access: true },
        pools: { web: { algorithm: 'round-robin', backends: origins.map((o, k) => ({ url: o.url, weight: weights[k]! })) } },
      }),
    );
    // 16 connections: the kernel spreads them over both workers' listen sockets
    const statuses = await load(proxy.url + '/', total, 16);
    expect(statuses.filter((s) => s === 200)).toHaveLength(total);
    const sum = weights.reduce((a, b) => a + b, 0);
    expect(origins.map((o) => o.requests.length)).toEqual(weights.map((w) => (total * w) / sum));
    await proxy.stop();
    // both workers served: the exactness is global, not per worker
    const workers = new Set(proxy.logs().filter((l) => l.msg === 'access').map((l) => l.worker));
    expect([...workers].sort()).toEqual([0, 1]);
  });
});

describe('least-connections', () => {
  it('steers away from a slow backend', async () => {
    const fast = await namedOrigins(2);
    const slow = await startOrigin((req, res) => {
      req.resume();
      setTimeout(() => res.end('slow'), 300);
    });
    const proxy = await startCorelb(
      corelbConfig({
        workers: 2,
        pools: { web: { algorithm: 'least-connections', backends: [fast[0]!.url, fast[1]!.url, slow.url] } },
      }),
    );
    const statuses = await load(proxy.url + '/', 300, 12);
    expect(statuses.filter((s) => s === 200)).toHaveLength(300);
    // Round-robin would give the slow backend 100; with 12 in flight it holds about one slot at
    // a time while the fast ones turn over many requests.
    expect(slow.requests.length).toBeLessThan(40);
    expect(fast[0]!.requests.length + fast[1]!.requests.length).toBeGreaterThan(260);
    await proxy.stop();
  });
});
