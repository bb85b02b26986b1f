// The balancing algorithms beyond round-robin, end to end with real backends and workers: 2:
// ewma steers away from a slow backend and wins it back once it is fast again; consistent-hash
// sends one key to one backend in every worker, and a removed backend moves only its own keys;
// sticky cookies hold across workers and fall back when their backend is gone.
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { corelbConfig, startCorelb, toYaml, type ConfigSpec } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';
import { startLoad, type Snapshot } from '../helpers/load.js';
import { startOrigin, type Origin } from '../helpers/origins.js';
import { sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

afterAll(stopEverything);

/** Origins answering `x-backend: bN` and their name, each after its own (changeable) delay. */
async function delayedOrigins(n: number): Promise<{ origins: Origin[]; delays: number[] }> {
  const delays = Array<number>(n).fill(0);
  const origins: Origin[] = [];
  for (let k = 0; k < n; k++) {
    origins.push(
      await startOrigin((req, res) => {
        req.resume();
        const answer = () => {
          res.setHeader('x-backend', `b${k + 1}`);
          res.end(`b${k + 1}`);
        };
        if (delays[k]! > 0) setTimeout(answer, delays[k]);
        else req.on('end', answer);
      }),
    );
  }
  return { origins, delays };
}

function delta(a: Snapshot, b: Snapshot): { total: number; byBackend: Record<string, number> } {
  const byBackend: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.byBackend)) byBackend[k] = v - (a.byBackend[k] ?? 0);
  return { total: b.ok - a.ok, byBackend };
}


describe('ewma (latency-aware)', () => {
  it('sends under 15% to a backend 50 ms slower than two others, and wins it back within 30 s once it is fast', async () => {
    const { origins, delays } = await delayedOrigins(3);
    delays[2] = 50;
    const lb = await startCorelb(
      corelbConfig({ workers: 2, pools: { web: { algorithm: 'ewma', backends: origins.map((o) => o.url) } } }),
    );
    const load = await startLoad({ url: `${lb.url}/`, concurrency: 8, maxRequests: 2_000_000, maxDurationMs: 45_000 });
    await sleep(1500); // warm-up: every backend measured
    const a = await load.snapshot();
    await sleep(3000);
    const b = await load.snapshot();
    const slow = delta(a, b);
    const slowShare = (slow.byBackend.b3 ?? 0) / slow.total;
    console.log(`[ewma] slow phase: b3 got ${slow.byBackend.b3 ?? 0} of ${slow.total} (${(slowShare * 100).toFixed(1)}%); ${JSON.stringify(slow.byBackend)}`);
    expect(slow.total).toBeGreaterThan(100);
    expect(slowShare).toBeLessThan(0.15);

    delays[2] = 0; // b3 is as fast as the others from now on
    const fastFrom = performance.now();
    let prev = await load.snapshot();
    let recoveredAfter = -1;
    let lastShare = 0;
    while (performance.now() - fastFrom < 30_000) {
      await sleep(1000);
      const now = await load.snapshot();
      const w = delta(prev, now);
      prev = now;
      lastShare = (w.byBackend.b3 ?? 0) / Math.max(1, w.total);
      if (lastShare >= 0.25) {
        recoveredAfter = performance.now() - fastFrom;
        break;
      }
    }
    const r = await load.stop();
    console.log(`[ewma] recovery: b3 reached ${(lastShare * 100).toFixed(1)}% of a 1 s window ${(recoveredAfter / 1000).toFixed(1)} s after it became fast (default ewma_decay 10s); ${r.failed} failed / ${r.total}`);
    expect(recoveredAfter, 'b3 never won back 25% within 30 s').toBeGreaterThan(0);
    expect(r.failed).toBe(0);
  }, 60_000);
});

describe('consistent-hash', () => {
  /** Backend per key, each request on a fresh connection so both workers serve. */
  async function mapKeys(url: string, keys: string[], rounds: number): Promise<Map<string, Set<string>>> {
    const seen = new Map<string, Set<string>>();
    for (let r = 0; r < rounds; r++) {
      await Promise.all(
        keys.map(async (key) => {
          const reply = await request(`${url}/item`, { headers: { 'x-user': key } });
          expect(reply.status).toBe(200);
          const set = seen.get(key) ?? new Set<string>();
          set.add(String(reply.headers['x-backend']));
          seen.set(key, set);
        }),
      );
    }
    return seen;
  }

  it('sends every request with one key to one backend across workers: 2; a removed backend moves only its own keys', async () => {
    const { origins } = await delayedOrigins(3);
    const spec = (urls: string[]): ConfigSpec => ({ workers: 2, pools: { web: { algorithm: 'consistent-hash', hash_key: 'header:x-user', backends: urls } } });
    const lb = await startCorelb(corelbConfig(spec(origins.map((o) => o.url))));
    const keys = Array.from({ length: 60 }, (_, k) => `user-${k}`);
    const before = await mapKeys(lb.url, keys, 4);
    const owner = new Map<string, string>();
    for (const [key, set] of before) {
      expect([...set], `key ${key} went to more than one backend`).toHaveLength(1);
      owner.set(key, [...set][0]!);
    }
    const counts = [...owner.values()].reduce<Record<string, number>>((m, b) => ((m[b] = (m[b] ?? 0) + 1), m), {});
    expect(Object.keys(counts).sort()).toEqual(['b1', 'b2', 'b3']);

    writeFileSync(lb.configFile, toYaml(corelbConfig({ ...spec([origins[0]!.url, origins[1]!.url]), port: lb.port })));
    process.kill(lb.pid, 'SIGHUP');
    await lb.waitForLog((l) => l.msg === 'reloaded', 10_000);
    const after = await mapKeys(lb.url, keys, 2);
    let moved = 0;
    for (const [key, set] of after) {
      expect([...set], `key ${key} went to more than one backend after the reload`).toHaveLength(1);
      const now = [...set][0]!;
      if (owner.get(key) === 'b3') moved++;
      else expect(now, `key ${key} of ${owner.get(key)} moved`).toBe(owner.get(key));
    }
    console.log(`[consistent-hash] keys per backend ${JSON.stringify(counts)}; removing b3 moved ${moved} of ${keys.length} keys, all of them b3's`);
  }, 60_000);
});

describe('consistent-hash keys', () => {
  it.each([
    { hashKey: 'path', path: (k: string) => `/item/${k}`, headers: () => ({}) },
    { hashKey: 'query:u', path: (k: string) => `/item?x=1&u=${k}`, headers: () => ({}) },
    { hashKey: 'cookie:u', path: () => '/item', headers: (k: string) => ({ cookie: `a=1; u=${k}` }) },
    { hashKey: 'header:x-tenant', path: () => '/item', headers: (k: string) => ({ 'x-tenant': k }) },
  ])('hash_key $hashKey: one key, one backend (fresh connections, workers: 2); keys spread', async ({ hashKey, path, headers }) => {
    const { origins } = await delayedOrigins(3);
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: { algorithm: 'consistent-hash', hash_key: hashKey, backends: origins.map((o) => o.url) } } }));
    const owners = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 24 }, async (_, n) => {
          const key = `k${n}`;
          const r = await request(`${lb.url}${path(key)}`, { headers: headers(key) });
          expect(r.status).toBe(200);
          const set = owners.get(key) ?? new Set<string>();
          set.add(String(r.headers['x-backend']));
          owners.set(key, set);
        }),
      );
    }
    for (const [key, set] of owners) expect([...set], key).toHaveLength(1);
    expect(new Set([...owners.values()].map((s) => [...s][0])).size).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('hash_key ip: every request from one client address goes to one backend; a request without the key is balanced round-robin', async () => {
    const { origins } = await delayedOrigins(3);
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: { algorithm: 'consistent-hash', hash_key: 'ip', backends: origins.map((o) => o.url) } } }));
    const seen = new Set<string>();
    for (let n = 0; n < 20; n++) seen.add(String((await request(`${lb.url}/x${n}`)).headers['x-backend']));
    expect(seen.size).toBe(1);
    const lb2 = await startCorelb(corelbConfig({ workers: 1, pools: { web: { algorithm: 'consistent-hash', hash_key: 'header:x-none', backends: origins.map((o) => o.url) } } }));
    const keyless = new Set<string>();
    for (let n = 0; n < 6; n++) keyless.add(String((await request(`${lb2.url}/y`)).headers['x-backend']));
    expect(keyless.size).toBe(3);
  }, 30_000);
});

describe('sticky cookies', () => {
  it('hold across workers, and fall back (with a new cookie) when their backend is gone', async () => {
    const { origins } = await delayedOrigins(3);
    const lb = await startCorelb(
      corelbConfig({ workers: 2, pools: { web: { algorithm: 'round-robin', sticky: { cookie: 'lb', ttl: '1h' }, backends: origins.map((o) => o.url) } } }),
    );
    const first = await request(`${lb.url}/`);
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/^lb=[0-9a-z]+; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/);
    const id = setCookie.slice(3, setCookie.indexOf(';'));
    expect(setCookie).not.toContain('127.0.0.1');
    const home = String(first.headers['x-backend']);
    const cookie = `other=1; lb=${id}`;
    const replies = await Promise.all(Array.from({ length: 30 }, () => request(`${lb.url}/`, { headers: { cookie } })));
    for (const r of replies) {
      expect(r.headers['x-backend']).toBe(home);
      expect(r.headers['set-cookie'], 'no new cookie while the cookie already names the backend').toBeUndefined();
    }
    await origins[Number(home.slice(1)) - 1]!.close();
    const fallback = await request(`${lb.url}/`, { headers: { cookie } });
    expect(fallback.status).toBe(200);
    expect(fallback.headers['x-backend']).not.toBe(home);
    const renewed = String(fallback.headers['set-cookie']);
    expect(renewed.startsWith('lb=')).toBe(true);
    expect(renewed).not.toContain(`lb=${id};`);
    console.log(`[sticky] 30/30 requests with the cookie went to ${home} across workers; with ${home} gone: ${fallback.headers['x-backend']} and a new cookie`);
  }, 30_000);
});
