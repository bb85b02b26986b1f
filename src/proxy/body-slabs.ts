// Owns the memory that request-body chunks are copied into on their way to a backend. uWS lends
// each chunk only for the duration of its onData callback, so it must be copied before an
// asynchronous socket write; a fresh Buffer per chunk (~128 KiB each) cost an mmap, page faults
// and GC work, measured at 41% of the worker's CPU on 1 MiB uploads. Chunks are copied into a
// few reusable slabs instead: a slab is written from start to end, and rewound or reused once
// every write holding part of it has completed (the write callback is the slab's `release`).

/** Bytes per slab. A chunk larger than this gets a buffer of its own. */
export const SLAB_BYTES = 1024 * 1024;

/** Slabs kept for reuse when idle; more are left to the garbage collector. */
const MAX_FREE = 4;

function noop(): void {}

export class Slab {
  readonly bytes = Buffer.allocUnsafeSlow(SLAB_BYTES);
  /** Next free byte. */
  offset = 0;
  /** Copies still being written. */
  refs = 0;
  /** Called once per copy when its write completed (or failed); no allocation per call. */
  readonly release: () => void;

  constructor(owner: BodySlabs) {
    this.release = () => owner.released(this);
  }
}

export class BodySlabs {
  private current: Slab | null = null;
  private readonly free: Slab[] = [];
  /** The release callback of the last `copy` (a no-op for a chunk copied outside the slabs). */
  lastRelease: () => void = noop;

  /**
   * Copy `chunk` (valid only now) into slab memory. The caller must call `lastRelease` exactly
   * once, when the copy is no longer read (normally as the socket write's callback).
   */
  copy(chunk: ArrayBuffer): Buffer {
    const n = chunk.byteLength;
    if (n > SLAB_BYTES) {
      this.lastRelease = noop;
      const own = Buffer.allocUnsafeSlow(n);
      own.set(new Uint8Array(chunk));
      return own;
    }
    let slab = this.current;
    if (slab === null || slab.offset + n > SLAB_BYTES) {
      if (slab !== null && slab.refs === 0) slab.offset = 0; // nothing in flight: rewind it
      else slab = this.take();
    }
    const at = slab.offset;
    slab.bytes.set(new Uint8Array(chunk), at);
    slab.offset = at + n;
    slab.refs++;
    this.lastRelease = slab.release;
    return slab.bytes.subarray(at, at + n);
  }

  released(slab: Slab): void {
    if (--slab.refs > 0) return;
    if (slab === this.current) {
      slab.offset = 0; // the current slab, idle: start again at its beginning (stays in cache)
    } else if (this.free.length < MAX_FREE) {
      slab.offset = 0;
      this.free.push(slab);
    }
  }

  /** Retire the current slab (still referenced) and make a free or new one current. */
  private take(): Slab {
    const slab = this.free.pop() ?? new Slab(this);
    this.current = slab;
    return slab;
  }
}
