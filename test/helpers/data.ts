// Deterministic bulk data: `total` bytes produced in 64 KiB chunks from a seed, never held whole.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

const CHUNK = 64 * 1024;

function baseBlock(seed: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  let x = (seed >>> 0) || 0x9e3779b9;
  for (let i = 0; i < CHUNK; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

/** Chunk i: the seed's base block with i stamped into its first 8 bytes (so order matters). */
function* chunks(total: number, seed: number): Generator<Buffer> {
  const base = baseBlock(seed);
  let i = 0;
  for (let off = 0; off < total; off += CHUNK, i++) {
    const n = Math.min(CHUNK, total - off);
    const c = Buffer.from(base.subarray(0, n));
    if (n >= 8) c.writeBigUInt64LE(BigInt(i), 0);
    yield c;
  }
}

export function deterministicStream(total: number, seed = 1): Readable {
  return Readable.from(chunks(total, seed), { objectMode: false, highWaterMark: CHUNK });
}

export function deterministicSha256(total: number, seed = 1): string {
  const h = createHash('sha256');
  for (const c of chunks(total, seed)) h.update(c);
  return h.digest('hex');
}

export const MB = 1024 * 1024;
