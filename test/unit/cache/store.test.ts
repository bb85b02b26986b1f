// The shared response store: fill, commit and find; Vary variants; a pinned entry's blocks are
// not reused while it is read; least-recently-used eviction; purge by target and by prefix; a
// fill abandoned or purged mid-way; every block accounted for after any of these; and a worker
// thread finding what the main thread stored, and waking on a fill's commit.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { BLOCK, CacheStore, hashKey, newCursor, Result, State, variantOf, type CacheKey, type EntryTimes, type FieldSource } from '../../../src/cache/store.js';

const key = (target: string, host = 'example.com'): CacheKey => {
  const k = { host, target, lo: 0, hi: 0 };
  hashKey(k);
  return k;
};
const noFields: FieldSource = { header: () => '' };
const fields = (o: Record<string, string>): FieldSource => ({ header: (n) => o[n] ?? '' });
const times = (): EntryTimes => ({ storedAt: Date.now(), initialAge: 0, lifetime: 60_000, swr: -1, sie: -1 });

/** Store `body` under `target`: returns the slot. */
function put(store: CacheStore, target: string, body: Uint8Array, head = '200 OK', vary = '', req: FieldSource = noFields): number {
  const w = newCursor();
  const s = store.beginFill(key(target), w);
  expect(s).toBeGreaterThanOrEqual(0);
  expect(store.setVary(s, w, vary, vary === '' ? 0 : variantOf(vary, req))).toBe(true);
  expect(store.append(s, w, Buffer.from(head, 'latin1'))).toBe(true);
  if (!store.append(s, w, body)) {
    store.abandon(s);
    return -1;
  }
  expect(store.commit(s, head.length, body.length, 0, times())).toBe(true);
  return s;
}

function bodyOf(store: CacheStore, s: number): Buffer {
  const c = newCursor();
  const start = store.headStart(s) + store.headBytes(s);
  store.seek(s, start, c);
  const parts: Uint8Array[] = [];
  let left = store.bodyBytes(s);
  while (left > 0) {
    const v = store.view(c, left);
    parts.push(Buffer.from(v));
    left -= v.length;
  }
  return Buffer.concat(parts);
}

const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255;
  return b;
};

describe('CacheStore', () => {
  it('stores and finds an entry with a body across blocks; the head reads back', () => {
    const store = CacheStore.create(1024 * 1024);
    const body = pattern(3 * BLOCK + 17, 1);
    const s = put(store, '/a?x=1', body, '200 OK\r\nx-a: 1');
    const found = store.find(key('/a?x=1'), noFields);
    expect(found).toBe(s);
    expect(bodyOf(store, found).equals(body)).toBe(true);
    expect(store.readText(found, store.headStart(found), store.headBytes(found))).toBe('200 OK\r\nx-a: 1');
    store.unpin(found);
    expect(store.find(key('/a?x=2'), noFields)).toBe(-1);
    expect(store.find(key('/a?x=1', 'other.example'), noFields)).toBe(-1);
    expect(store.entries).toBe(1);
    expect(store.bytes).toBe('example.com /a?x=1'.length + 14 + body.length);
  });

  it('a key longer than a block is stored and matched whole', () => {
    const store = CacheStore.create(1024 * 1024);
    const long = '/long?' + 'q'.repeat(6000);
    put(store, long, Buffer.from('long'));
    const s = store.find(key(long), noFields);
    expect(bodyOf(store, s).toString()).toBe('long');
    store.unpin(s);
    expect(store.find(key(long.slice(0, -1) + 'x'), noFields)).toBe(-1);
    expect(store.purge(long, false)).toBe(1);
  });

  it('a second fill of a key is refused while the first runs, and names it', () => {
    const store = CacheStore.create(1024 * 1024);
    const w = newCursor();
    const first = store.beginFill(key('/once'), w);
    expect(store.beginFill(key('/once'), newCursor())).toBe(-1);
    expect(store.filling).toBe(first);
    store.abandon(first);
    expect(store.beginFill(key('/once'), newCursor())).toBeGreaterThanOrEqual(0);
  });

  it('keeps Vary variants apart', () => {
    const store = CacheStore.create(1024 * 1024);
    put(store, '/v', Buffer.from('gzip'), '200 OK', 'accept-encoding', fields({ 'accept-encoding': 'gzip' }));
    put(store, '/v', Buffer.from('plain'), '200 OK', 'accept-encoding', fields({ 'accept-encoding': 'identity' }));
    const g = store.find(key('/v'), fields({ 'accept-encoding': 'gzip' }));
    expect(bodyOf(store, g).toString()).toBe('gzip');
    store.unpin(g);
    const p = store.find(key('/v'), fields({ 'accept-encoding': 'identity' }));
    expect(bodyOf(store, p).toString()).toBe('plain');
    store.unpin(p);
    expect(store.find(key('/v'), fields({ 'accept-encoding': 'br' }))).toBe(-1);
  });

  it('a new fill of a key replaces the old answer when it commits, not before', () => {
    const store = CacheStore.create(1024 * 1024);
    put(store, '/r', Buffer.from('one'));
    const w = newCursor();
    const s = store.beginFill(key('/r'), w);
    const old = store.find(key('/r'), noFields);
    expect(bodyOf(store, old).toString()).toBe('one');
    store.unpin(old);
    store.append(s, w, Buffer.from('200 OKtwo'));
    store.commit(s, 6, 3, 0, times());
    const now = store.find(key('/r'), noFields);
    expect(bodyOf(store, now).toString()).toBe('two');
    store.unpin(now);
    expect(store.entries).toBe(1);
  });

  it('evicts the least recently used entry, never a pinned one, and reuses its blocks after the reader leaves', async () => {
    // 8 blocks: each 2-block object takes 2 (key and head fit in the first)
    const store = CacheStore.create(8 * BLOCK);
    const body = pattern(BLOCK, 2);
    for (const t of ['/1', '/2', '/3', '/4']) {
      put(store, t, body);
      await new Promise((r) => setTimeout(r, 3));
    }
    expect(store.freeBlocks).toBe(0);
    // /1 is read (most recent now), /2 is pinned by a reader in the middle of its answer
    store.unpin(store.find(key('/1'), noFields));
    await new Promise((r) => setTimeout(r, 3));
    const reading = store.find(key('/2'), noFields);
    put(store, '/5', body); // evicts /3: /2 is older but pinned
    expect(store.find(key('/3'), noFields)).toBe(-1);
    expect(bodyOf(store, reading).equals(body)).toBe(true);
    put(store, '/6', body); // evicts /4
    expect(store.find(key('/4'), noFields)).toBe(-1);
    put(store, '/7', body); // /2 is still pinned: /1 goes
    expect(store.find(key('/1'), noFields)).toBe(-1);
    expect(bodyOf(store, reading).equals(body)).toBe(true);
    store.unpin(reading);
    expect(store.evictions).toBe(3);
    for (const t of ['/5', '/6', '/7', '/2']) {
      const s = store.find(key(t), noFields);
      expect(s, t).toBeGreaterThanOrEqual(0);
      expect(bodyOf(store, s).equals(body)).toBe(true);
      store.unpin(s);
    }
  });

  it('reads a body whose blocks are scattered (freed out of order and reused) whole', () => {
    const store = CacheStore.create(16 * BLOCK);
    const small = pattern(10, 4);
    for (const t of ['/s1', '/s2', '/s3', '/s4', '/s5', '/s6']) put(store, t, small);
    for (const t of ['/s2', '/s5', '/s3']) expect(store.purge(t, false)).toBe(1); // holes, freed in another order
    const body = pattern(5 * BLOCK + 123, 5);
    const s = put(store, '/scattered', body);
    expect(bodyOf(store, s).equals(body)).toBe(true);
    const found = store.find(key('/scattered'), noFields);
    expect(bodyOf(store, found).equals(body)).toBe(true);
    store.unpin(found);
    for (const t of ['/s1', '/s4', '/s6']) {
      const f = store.find(key(t), noFields);
      expect(bodyOf(store, f).equals(small), t).toBe(true);
      store.unpin(f);
    }
  });

  it('an object larger than the store is refused and every block comes back', () => {
    const store = CacheStore.create(8 * BLOCK);
    expect(put(store, '/big', pattern(9 * BLOCK, 3))).toBe(-1);
    expect(store.freeBlocks).toBe(store.blocks);
    expect(store.entries).toBe(0);
  });

  it('purges by exact target (all hosts and variants) and by prefix, fills included', () => {
    const store = CacheStore.create(1024 * 1024);
    put(store, '/p/a', Buffer.from('x'), '200 OK', 'accept', fields({ accept: 'a' }));
    put(store, '/p/a', Buffer.from('y'), '200 OK', 'accept', fields({ accept: 'b' }));
    put(store, '/p/a?q', Buffer.from('z'));
    put(store, '/p/b', Buffer.from('z'));
    put(store, '/q', Buffer.from('z'));
    expect(store.purge('/p/a', false)).toBe(2);
    expect(store.entries).toBe(3);
    const w = newCursor();
    const filling = store.beginFill(key('/p/c'), w);
    expect(store.purge('/p/', true)).toBe(3);
    store.append(filling, w, Buffer.from('200 OKz'));
    expect(store.commit(filling, 6, 1, 0, times())).toBe(false); // purged mid-fill: not stored
    expect(store.find(key('/p/c'), noFields)).toBe(-1);
    expect(store.entries).toBe(1);
    expect(store.find(key('/q'), noFields)).toBeGreaterThanOrEqual(0);
  });

  it('reports a running fill to lookups, and an abandoned fill leaves nothing', () => {
    const store = CacheStore.create(1024 * 1024);
    const w = newCursor();
    const s = store.beginFill(key('/f'), w);
    expect(store.find(key('/f'), noFields)).toBe(-1);
    expect(store.filling).toBe(s);
    store.abandon(s);
    expect(store.state[s]).toBe(State.Empty);
    expect(store.find(key('/f'), noFields)).toBe(-1);
    expect(store.filling).toBe(-1);
    expect(store.freeBlocks).toBe(store.blocks);
  });

  it('counts results per pool, on a row found by the pool name', () => {
    const store = CacheStore.create(64 * 1024);
    expect(store.counterRow('web', false)).toBe(-1);
    const web = store.counterRow('web');
    const api = store.counterRow('api');
    expect(api).not.toBe(web);
    expect(store.counterRow('web')).toBe(web);
    store.count(web, Result.Hit);
    store.count(web, Result.Hit);
    store.count(web, Result.Miss);
    expect(store.counted(store.counterRow('web', false), Result.Hit)).toBe(2);
    expect(store.counted(web, Result.Miss)).toBe(1);
    expect(store.counted(api, Result.Hit)).toBe(0);
  });

  it('another thread finds what this one stored, and wakes when a fill commits', async () => {
    const store = CacheStore.create(1024 * 1024);
    put(store, '/shared', Buffer.from('hello'));
    const w = newCursor();
    const s = store.beginFill(key('/late'), w);
    // the built module (npm run build): a worker thread cannot load TypeScript
    const url = new URL('../../../dist/cache/store.js', import.meta.url).href;
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(async (m) => {
        const store = m.CacheStore.attach(workerData.buffer);
        const k = (t) => { const o = { host: 'example.com', target: t, lo: 0, hi: 0 }; m.hashKey(o); return o; };
        const f = { header: () => '' };
        const a = store.find(k('/shared'), f);
        const first = a >= 0 ? store.bodyBytes(a) : -1;
        if (a >= 0) store.unpin(a);
        store.find(k('/late'), f);
        const filling = store.filling;
        // a pending waitAsync does not keep a thread's loop alive (a serving worker's is)
        const keep = setInterval(() => {}, 1000);
        const r = Atomics.waitAsync(store.state, filling, 1, 5000);
        parentPort.postMessage({ ready: true });
        const outcome = r.async ? await r.value : r.value;
        clearInterval(keep);
        const b = store.find(k('/late'), f);
        parentPort.postMessage({ first, filling, outcome, late: b >= 0 ? store.bodyBytes(b) : -1 });
      });
      `,
      { eval: true, workerData: { buffer: store.buffer, url } },
    );
    const messages: Record<string, unknown>[] = [];
    const done = new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.on('message', (m: Record<string, unknown>) => {
        messages.push(m);
        if (m.ready === true) {
          store.append(s, w, Buffer.from('200 OKlate!'));
          store.commit(s, 6, 5, 0, times());
        } else resolve(m);
      });
      worker.on('error', reject);
    });
    const result = await done;
    await worker.terminate();
    expect(result).toEqual({ first: 5, filling: s, outcome: 'ok', late: 5 });
  });
});
