// Request-body slabs: a copy is never overwritten while its write is in flight, memory is reused
// once every copy of a slab is released, and bytes written through a real socket with the slab's
// release as the write callback arrive intact even when the reader is slow.
import net from 'node:net';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BodySlabs, SLAB_BYTES } from '../../../src/proxy/body-slabs.js';
import { sleep } from '../../helpers/time.js';

/** A chunk as uWS lends it: an ArrayBuffer of `n` bytes, each `(seed + i) & 255`. */
function chunk(n: number, seed: number): ArrayBuffer {
  const u = new Uint8Array(n);
  for (let i = 0; i < n; i++) u[i] = (seed + i) & 255;
  return u.buffer;
}

function matches(copy: Buffer, n: number, seed: number): boolean {
  if (copy.length !== n) return false;
  for (let i = 0; i < n; i++) if (copy[i] !== ((seed + i) & 255)) return false;
  return true;
}

describe('BodySlabs', () => {
  it('copies keep their bytes while unreleased, across several slabs', () => {
    const slabs = new BodySlabs();
    const held: { copy: Buffer; n: number; seed: number }[] = [];
    for (let k = 0; k < 40; k++) {
      const n = 1000 + k * 7919; // sizes that do not divide the slab
      held.push({ copy: slabs.copy(chunk(n, k)), n, seed: k });
    }
    // about 2.3 MB held: at least three distinct slabs
    expect(new Set(held.map((h) => h.copy.buffer)).size).toBeGreaterThanOrEqual(3);
    for (const h of held) expect(matches(h.copy, h.n, h.seed)).toBe(true);
  });

  it('reuses a slab once its copies are released, and never one with a copy in flight', () => {
    const slabs = new BodySlabs();
    const a = slabs.copy(chunk(600_000, 1));
    const releaseA = slabs.lastRelease;
    const b = slabs.copy(chunk(600_000, 2)); // does not fit after a: a new slab
    const releaseB = slabs.lastRelease;
    expect(b.buffer).not.toBe(a.buffer);
    releaseA(); // a's slab is retired and now idle: kept for reuse
    const c = slabs.copy(chunk(600_000, 3)); // does not fit after b (in flight): a's slab again
    expect(c.buffer).toBe(a.buffer);
    expect(matches(b, 600_000, 2)).toBe(true);
    releaseB();
    slabs.lastRelease();
    // everything released: the current slab rewinds, the next copy starts at its beginning
    const d = slabs.copy(chunk(10, 4));
    expect(d.byteOffset).toBe(0);
  });

  it('gives a chunk larger than a slab a buffer of its own', () => {
    const slabs = new BodySlabs();
    const big = slabs.copy(chunk(SLAB_BYTES + 1, 5));
    expect(matches(big, SLAB_BYTES + 1, 5)).toBe(true);
    slabs.lastRelease(); // a no-op for it
    const small = slabs.copy(chunk(100, 6));
    expect(small.buffer).not.toBe(big.buffer);
  });

  it('bytes written through a socket to a slow reader arrive intact', async () => {
    const slabs = new BodySlabs();
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let received = 0;
    const total = { bytes: 0 };
    const server = net.createServer((sock) => {
      sock.pause(); // let the sender's kernel buffer fill and user-space queue grow
      setTimeout(() => {
        sock.on('data', (d: Buffer) => {
          got.update(d);
          received += d.length;
        });
        sock.resume();
      }, 200);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const client = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => client.on('connect', r));
    let released = 0;
    for (let k = 0; k < 60; k++) {
      const n = 50_000 + k * 1_000;
      const c = chunk(n, k * 13);
      sent.update(new Uint8Array(c));
      total.bytes += n;
      const copy = slabs.copy(c);
      const release = slabs.lastRelease;
      client.write(copy, () => {
        released++;
        release();
      });
    }
    expect(client.writableLength).toBeGreaterThan(0); // some writes really were asynchronous
    client.end();
    const deadline = Date.now() + 10_000;
    while (received < total.bytes && Date.now() < deadline) await sleep(20);
    client.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    expect(received).toBe(total.bytes);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
    expect(released).toBe(60);
  });
});
