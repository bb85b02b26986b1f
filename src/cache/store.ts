// Owns the response store in shared memory: one SharedArrayBuffer, made once by the primary and
// attached by every worker, holding an index (open addressing over a 64-bit key hash, a short
// probe window) and the entries' bytes in fixed-size blocks with a free list (an entry is a
// chain of blocks: key, Vary names, response head, body). Writers (fills, evictions, purges)
// take one spin lock in the header, briefly; readers take no lock: a reader pins an entry, and a
// pinned entry's blocks are never reused (the last reader of an evicted entry frees them).
// Entry states: empty, filling (one request is fetching it; others wait on the state word with
// Atomics.waitAsync), ready, dead (evicted or purged while pinned). Eviction takes the least
// recently used unpinned entry of a sample of the index (exact up to SAMPLE slots).

/** Bytes per block. */
export const BLOCK = 4096;
/** Index slots probed for a key. */
const PROBE = 16;
/** Index slots looked at for the least recently used entry when space is needed. */
const SAMPLE = 1024;
/** Pools with their own result counters (rows claimed by pool name; later ones share the last). */
export const COUNTED_POOLS = 64;

export const enum State {
  Empty = 0,
  Filling = 1,
  Ready = 2,
  Dead = 3,
}

/** Result counters per pool (metrics corelb_cache_requests_total{result}). */
export const enum Result {
  Hit = 0,
  Miss = 1,
  Stale = 2,
  Revalidated = 3,
  Bypass = 4,
}
export const RESULT_NAMES = ['hit', 'miss', 'stale', 'revalidated', 'bypass'] as const;

// header words
const H_LOCK = 0;
const H_SLOTS = 1;
const H_BLOCKS = 2;
const H_FREE = 3; // free blocks on the stack
const H_ENTRIES = 4;
const H_BYTES = 5;
const H_EVICTIONS = 6;
const H_HAND = 7;
const H_COUNTERS = 16; // COUNTED_POOLS x 8 words: the pool name's hash, then the results
const HEADER_BYTES = (H_COUNTERS + COUNTED_POOLS * 8) * 4;

/** Int32 arrays per slot, in this order. */
const I_FIELDS = 11;
/** Float64 arrays per slot. */
const F_FIELDS = 6;

function blockCount(size: number): number {
  return Math.max(4, Math.floor(size / BLOCK));
}
function slotCount(size: number): number {
  let n = 256;
  while (n < blockCount(size) * 2) n *= 2;
  return n;
}

/** What a key is made of: the request's host and its target (path and query). */
export interface CacheKey {
  host: string;
  target: string;
  lo: number;
  hi: number;
}

/** FNV-1a over host, a separator and target, in two independent 32-bit lanes. */
export function hashKey(k: CacheKey): void {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  const h = k.host;
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a = Math.imul(a ^ 32, 0x01000193);
  b = Math.imul(b ^ 32, 0x5bd1e995);
  const t = k.target;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  k.lo = a | 0;
  k.hi = (b ^ (b >>> 15)) | 0;
}

/** Request fields by lower-case name ('' when absent): Downstream satisfies it. */
export interface FieldSource {
  header(lowerName: string): string;
}

/** Hash of the values the request gives the fields `names` (comma-separated, lower-case). */
export function variantOf(names: string, req: FieldSource): number {
  let h = 0x811c9dc5;
  let start = 0;
  const n = names.length;
  while (start < n) {
    let end = names.indexOf(',', start);
    if (end < 0) end = n;
    const v = req.header(names.slice(start, end));
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 10, 0x01000193);
    start = end + 1;
  }
  return h | 0;
}

/** Where a reader or writer is in an entry's chain. */
export interface Cursor {
  block: number;
  at: number;
  /** Entry bytes before `block`'s first byte. */
  base: number;
}

export function newCursor(): Cursor {
  return { block: -1, at: 0, base: 0 };
}

/** The metadata of an entry, written when a fill completes or a revalidation refreshes it. */
export interface EntryTimes {
  storedAt: number;
  initialAge: number;
  lifetime: number;
  swr: number;
  sie: number;
}

export class CacheStore {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  readonly blocks: number;
  private readonly header: Int32Array;
  // per slot
  readonly state: Int32Array;
  private readonly pins: Int32Array;
  private readonly hashLo: Int32Array;
  private readonly hashHi: Int32Array;
  private readonly variant: Int32Array;
  private readonly first: Int32Array;
  private readonly keyLen: Int32Array;
  private readonly varyLen: Int32Array;
  private readonly headLen: Int32Array;
  private readonly bodyLen: Int32Array;
  /** freshness.ts EntryFlag bits, and the refresh-in-progress bit. */
  readonly flags: Int32Array;
  private readonly storedAt: Float64Array;
  private readonly initialAge: Float64Array;
  private readonly lifetime: Float64Array;
  private readonly swr: Float64Array;
  private readonly sie: Float64Array;
  private readonly lastAccess: Float64Array;
  // blocks
  private readonly next: Int32Array;
  private readonly freeStack: Int32Array;
  readonly data: Uint8Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const n = (this.slots = this.header[H_SLOTS]!);
    const b = (this.blocks = this.header[H_BLOCKS]!);
    let off = HEADER_BYTES;
    const f64 = (): Float64Array => {
      const a = new Float64Array(buffer, off, n);
      off += n * 8;
      return a;
    };
    this.storedAt = f64();
    this.initialAge = f64();
    this.lifetime = f64();
    this.swr = f64();
    this.sie = f64();
    this.lastAccess = f64();
    const i32 = (count: number): Int32Array => {
      const a = new Int32Array(buffer, off, count);
      off += count * 4;
      return a;
    };
    this.state = i32(n);
    this.pins = i32(n);
    this.hashLo = i32(n);
    this.hashHi = i32(n);
    this.variant = i32(n);
    this.first = i32(n);
    this.keyLen = i32(n);
    this.varyLen = i32(n);
    this.headLen = i32(n);
    this.bodyLen = i32(n);
    this.flags = i32(n);
    this.next = i32(b);
    this.freeStack = i32(b);
    this.data = new Uint8Array(buffer, off, b * BLOCK);
  }

  /** A new, empty store of `size` bytes of blocks (the primary, once per process). */
  static create(size: number): CacheStore {
    const n = slotCount(size);
    const b = blockCount(size);
    const buffer = new SharedArrayBuffer(HEADER_BYTES + n * (I_FIELDS * 4 + F_FIELDS * 8) + b * 8 + b * BLOCK);
    const h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    h[H_SLOTS] = n;
    h[H_BLOCKS] = b;
    const store = new CacheStore(buffer);
    for (let i = 0; i < b; i++) store.freeStack[i] = b - 1 - i;
    h[H_FREE] = b;
    store.first.fill(-1);
    return store;
  }

  static attach(buffer: SharedArrayBuffer): CacheStore {
    return new CacheStore(buffer);
  }

  // ---- the lock (writers only)
  private lock(): void {
    const h = this.header;
    let spins = 0;
    while (Atomics.compareExchange(h, H_LOCK, 0, 1) !== 0) {
      if (++spins > 100) Atomics.wait(h, H_LOCK, 1, 1);
    }
  }
  private unlock(): void {
    Atomics.store(this.header, H_LOCK, 0);
    Atomics.notify(this.header, H_LOCK, 1);
  }

  // ---- lookups (lock-free)
  /** The index slot a key's probe window starts at. */
  private home(k: CacheKey): number {
    return k.lo & (this.slots - 1);
  }

  /** Set by `find`: a slot being filled for the key (wait on `state` there), or -1. */
  filling = -1;

  /**
   * A ready entry for the key whose Vary'd fields (if any) match the request's, pinned (release
   * with `unpin`); -1 when there is none. Sets `filling` when a fill for the key is running.
   */
  find(k: CacheKey, req: FieldSource): number {
    const mask = this.slots - 1;
    let s = this.home(k);
    this.filling = -1;
    for (let p = 0; p < PROBE; p++, s = (s + 1) & mask) {
      if (this.hashLo[s] !== k.lo || this.hashHi[s] !== k.hi) continue;
      const st = Atomics.load(this.state, s);
      if (st === State.Filling) {
        if (this.keyMatches(s, k)) this.filling = s;
        continue;
      }
      if (st !== State.Ready) continue;
      Atomics.add(this.pins, s, 1);
      if (Atomics.load(this.state, s) === State.Ready && this.hashLo[s] === k.lo && this.keyMatches(s, k) && this.varyMatches(s, req)) {
        this.lastAccess[s] = Date.now();
        return s;
      }
      this.unpin(s);
    }
    return -1;
  }

  pin(s: number): void {
    Atomics.add(this.pins, s, 1);
  }

  unpin(s: number): void {
    if (Atomics.sub(this.pins, s, 1) === 1 && Atomics.load(this.state, s) === State.Dead) {
      this.lock();
      try {
        if (this.state[s] === State.Dead && Atomics.load(this.pins, s) === 0) this.release(s);
      } finally {
        this.unlock();
      }
    }
  }

  private keyMatches(s: number, k: CacheKey): boolean {
    const len = k.host.length + 1 + k.target.length;
    if (this.keyLen[s] !== len) return false;
    const data = this.data;
    let block = this.first[s]!;
    let at = 0;
    for (let i = 0; i < len; i++, at++) {
      if (at === BLOCK) {
        block = this.next[block]!;
        at = 0;
        if (block < 0) return false; // a long key's tail not written yet
      }
      const c = i < k.host.length ? k.host.charCodeAt(i) : i === k.host.length ? 32 : k.target.charCodeAt(i - k.host.length - 1);
      if (data[block * BLOCK + at] !== (c & 255)) return false;
    }
    return true;
  }

  private varyMatches(s: number, req: FieldSource): boolean {
    const n = this.varyLen[s]!;
    if (n === 0) return true;
    return variantOf(this.readText(s, this.keyLen[s]!, n), req) === this.variant[s];
  }

  /** Entry bytes [from, from + n) as latin1 text (small things: the key, Vary names, a field). */
  readText(s: number, from: number, n: number): string {
    const c = newCursor();
    this.seek(s, from, c);
    let out = '';
    while (n > 0) {
      const take = Math.min(n, BLOCK - c.at);
      const start = c.block * BLOCK + c.at;
      out += Buffer.from(this.buffer, this.data.byteOffset + start, take).toString('latin1');
      n -= take;
      c.block = this.next[c.block]!;
      c.at = 0;
    }
    return out;
  }

  /** Put `c` at entry byte `from` of slot `s`. */
  seek(s: number, from: number, c: Cursor): void {
    let block = this.first[s]!;
    let base = 0;
    while (from - base >= BLOCK) {
      block = this.next[block]!;
      base += BLOCK;
    }
    c.block = block;
    c.at = from - base;
    c.base = base;
  }

  /**
   * A view of up to `max` entry bytes at `c`, advancing it: over as many blocks as follow each
   * other in memory (a fresh store hands out consecutive blocks), so a body is usually one view.
   */
  view(c: Cursor, max: number): Uint8Array {
    if (c.at === BLOCK) {
      c.block = this.next[c.block]!;
      c.base += BLOCK;
      c.at = 0;
    }
    const start = c.block * BLOCK + c.at;
    let take = Math.min(max, BLOCK - c.at);
    c.at += take;
    const next = this.next;
    while (take < max && c.at === BLOCK && next[c.block] === c.block + 1) {
      c.block++;
      c.base += BLOCK;
      const more = Math.min(max - take, BLOCK);
      c.at = more;
      take += more;
    }
    return this.data.subarray(start, start + take);
  }

  // ---- what readers ask of a pinned entry
  keyBytes(s: number): number {
    return this.keyLen[s]!;
  }
  varyBytes(s: number): number {
    return this.varyLen[s]!;
  }
  headBytes(s: number): number {
    return this.headLen[s]!;
  }
  bodyBytes(s: number): number {
    return this.bodyLen[s]!;
  }
  /** The hash of the Vary'd request fields the entry was stored for (0 without Vary). */
  variantAt(s: number): number {
    return this.variant[s]!;
  }
  /** Where the head starts in the entry's bytes. */
  headStart(s: number): number {
    return this.keyLen[s]! + this.varyLen[s]!;
  }
  times(s: number, into: EntryTimes): EntryTimes {
    into.storedAt = this.storedAt[s]!;
    into.initialAge = this.initialAge[s]!;
    into.lifetime = this.lifetime[s]!;
    into.swr = this.swr[s]!;
    into.sie = this.sie[s]!;
    return into;
  }
  /** A revalidation (304) made a stored entry fresh again. */
  refresh(s: number, t: EntryTimes): void {
    this.storedAt[s] = t.storedAt;
    this.initialAge[s] = t.initialAge;
    this.lifetime[s] = t.lifetime;
    this.swr[s] = t.swr;
    this.sie[s] = t.sie;
  }
  /** Claim the one background refresh of an entry; false when another worker has it. */
  claimRefresh(s: number): boolean {
    const f = Atomics.load(this.flags, s);
    if ((f & REFRESHING) !== 0) return false;
    return Atomics.compareExchange(this.flags, s, f, f | REFRESHING) === f;
  }
  endRefresh(s: number): void {
    Atomics.and(this.flags, s, ~REFRESHING);
  }

  // ---- fills (under the lock, briefly)
  /**
   * Start storing an answer for the key: a slot in state filling holding the key, or -1 when
   * none could be had (another fill of the key runs: `filling` says where; the window is full
   * of pinned or filling entries; no block is free).
   * Ready entries for the key stay until the fill completes (they may be served stale).
   */
  beginFill(k: CacheKey, w: Cursor): number {
    const mask = this.slots - 1;
    let slot = -1;
    // the key is in the entry before its state says filling: another worker's beginFill (under
    // the lock) must recognise the fill by it, or the misses would not collapse
    const len = k.host.length + 1 + k.target.length;
    const scratch = keyScratch(len);
    scratch.write(k.host, 0, 'latin1');
    scratch[k.host.length] = 32;
    scratch.write(k.target, k.host.length + 1, 'latin1');
    const head = Math.min(len, BLOCK);
    this.lock();
    try {
      let s = this.home(k);
      let victim = -1;
      this.filling = -1;
      for (let p = 0; p < PROBE; p++, s = (s + 1) & mask) {
        const st = this.state[s]!;
        if (st === State.Filling && this.hashLo[s] === k.lo && this.hashHi[s] === k.hi && this.keyMatches(s, k)) {
          this.filling = s; // a fill of this key is running (begun since the lookup)
          return -1;
        }
        if (st === State.Empty && slot < 0) slot = s;
        if (st === State.Ready && Atomics.load(this.pins, s) === 0 && (victim < 0 || this.lastAccess[s]! < this.lastAccess[victim]!)) victim = s;
      }
      if (slot < 0 && victim >= 0) {
        this.kill(victim);
        this.header[H_EVICTIONS]!++;
        if (this.state[victim] === State.Empty) slot = victim;
      }
      if (slot < 0) return -1;
      const block = this.allocate();
      if (block < 0) return -1;
      this.first[slot] = block;
      this.next[block] = -1;
      this.data.set(scratch.subarray(0, head), block * BLOCK);
      this.hashLo[slot] = k.lo;
      this.hashHi[slot] = k.hi;
      this.keyLen[slot] = len;
      this.varyLen[slot] = this.headLen[slot] = this.bodyLen[slot] = 0;
      this.variant[slot] = 0;
      this.flags[slot] = 0;
      this.lastAccess[slot] = Date.now();
      Atomics.store(this.state, slot, State.Filling);
    } finally {
      this.unlock();
    }
    w.block = this.first[slot]!;
    w.at = head;
    w.base = 0;
    // a key longer than a block (rare): the rest after the lock
    if (len > head && !this.append(slot, w, scratch.subarray(head, len))) {
      this.abandon(slot);
      return -1;
    }
    return slot;
  }

  /**
   * Append bytes to a filling entry at `w`; false when no more blocks could be had, or the entry
   * was purged meanwhile (it takes no more memory: the caller abandons it).
   */
  append(s: number, w: Cursor, bytes: Uint8Array): boolean {
    let off = 0;
    const n = bytes.length;
    while (off < n) {
      if (w.at === BLOCK) {
        if (Atomics.load(this.state, s) !== State.Filling) return false;
        this.lock();
        let block: number;
        try {
          block = this.allocate();
        } finally {
          this.unlock();
        }
        if (block < 0) return false;
        this.next[block] = -1;
        this.next[w.block] = block;
        w.block = block;
        w.base += BLOCK;
        w.at = 0;
      }
      const take = Math.min(n - off, BLOCK - w.at);
      this.data.set(bytes.subarray(off, off + take), w.block * BLOCK + w.at);
      w.at += take;
      off += take;
    }
    return true;
  }

  /** The Vary names and variant of a filling entry, appended after its key. */
  setVary(s: number, w: Cursor, names: string, variant: number): boolean {
    if (names.length === 0) return true;
    if (!this.append(s, w, Buffer.from(names, 'latin1'))) return false;
    this.varyLen[s] = names.length;
    this.variant[s] = variant;
    return true;
  }

  /**
   * The fill is whole: the entry becomes ready (unless it was purged meanwhile), older ready
   * entries for the same key and variant die, and waiters wake. False when it was purged.
   */
  commit(s: number, headLen: number, bodyLen: number, flags: number, t: EntryTimes): boolean {
    this.headLen[s] = headLen;
    this.bodyLen[s] = bodyLen;
    this.flags[s] = flags;
    this.refresh(s, t);
    this.lastAccess[s] = Date.now();
    let ok: boolean;
    this.lock();
    try {
      ok = Atomics.compareExchange(this.state, s, State.Filling, State.Ready) === State.Filling;
      if (ok) {
        this.header[H_ENTRIES]!++;
        this.header[H_BYTES]! += this.keyLen[s]! + this.varyLen[s]! + headLen + bodyLen;
        // older answers for the same key and variant
        const mask = this.slots - 1;
        let o = this.hashLo[s]! & mask;
        for (let p = 0; p < PROBE; p++, o = (o + 1) & mask) {
          if (o !== s && this.state[o] === State.Ready && this.hashLo[o] === this.hashLo[s] && this.hashHi[o] === this.hashHi[s] && this.variant[o] === this.variant[s] && this.varyLen[o] === this.varyLen[s] && this.keyLen[o] === this.keyLen[s]) this.kill(o);
        }
      } else if (this.state[s] === State.Dead && Atomics.load(this.pins, s) === 0) this.release(s);
    } finally {
      this.unlock();
    }
    Atomics.notify(this.state, s);
    return ok;
  }

  /** Drop a fill (not storable after all, too large, the backend failed); waiters wake. */
  abandon(s: number): void {
    this.lock();
    try {
      const st = this.state[s];
      if (st === State.Filling || (st === State.Dead && Atomics.load(this.pins, s) === 0)) this.release(s);
    } finally {
      this.unlock();
    }
    Atomics.notify(this.state, s);
  }

  // ---- under the lock
  private allocate(): number {
    const h = this.header;
    for (let tries = 0; h[H_FREE] === 0; tries++) {
      if (tries >= 64 || !this.evictLeastRecent()) return -1;
    }
    return this.freeStack[--h[H_FREE]!]!;
  }

  /** Evict the least recently used unpinned ready entry of a sample; false when none is. */
  private evictLeastRecent(): boolean {
    const h = this.header;
    const mask = this.slots - 1;
    const count = Math.min(SAMPLE, this.slots);
    let s = h[H_HAND]! & mask;
    let victim = -1;
    for (let i = 0; i < count; i++, s = (s + 1) & mask) {
      if (this.state[s] === State.Ready && Atomics.load(this.pins, s) === 0 && (victim < 0 || this.lastAccess[s]! < this.lastAccess[victim]!)) victim = s;
    }
    h[H_HAND] = count === this.slots ? 0 : s;
    if (victim < 0) return false;
    this.kill(victim);
    h[H_EVICTIONS]!++;
    return true;
  }

  /** A ready entry leaves the index; its blocks go back now, or when its last reader unpins it. */
  private kill(s: number): void {
    const was = this.state[s];
    if (was === State.Ready) {
      this.header[H_ENTRIES]!--;
      this.header[H_BYTES]! -= this.keyLen[s]! + this.varyLen[s]! + this.headLen[s]! + this.bodyLen[s]!;
    }
    Atomics.store(this.state, s, State.Dead);
    // a fill's blocks are its writer's until it commits or abandons (both see the death)
    if (was !== State.Filling && Atomics.load(this.pins, s) === 0) this.release(s);
  }

  private release(s: number): void {
    const h = this.header;
    let block = this.first[s]!;
    while (block >= 0) {
      const n = this.next[block]!;
      this.freeStack[h[H_FREE]!++] = block;
      block = n;
    }
    this.first[s] = -1;
    this.hashLo[s] = 0;
    this.hashHi[s] = 0;
    Atomics.store(this.state, s, State.Empty);
  }

  /**
   * Remove the entries of one key, every variant and any fill under way (RFC 9111 §4.4: an
   * unsafe request answered without error invalidates its target). Returns how many.
   */
  invalidate(k: CacheKey): number {
    const mask = this.slots - 1;
    let n = 0;
    this.lock();
    try {
      let s = this.home(k);
      for (let p = 0; p < PROBE; p++, s = (s + 1) & mask) {
        if (this.hashLo[s] !== k.lo || this.hashHi[s] !== k.hi) continue;
        const st = this.state[s];
        if ((st !== State.Ready && st !== State.Filling) || !this.keyMatches(s, k)) continue;
        this.kill(s);
        n++;
      }
    } finally {
      this.unlock();
    }
    return n;
  }

  // ---- admin (the primary)
  /**
   * Remove every entry whose target (path and query) is `target` (`prefix`: starts with it),
   * whatever its host and variant, fills included. Returns how many.
   */
  purge(target: string, prefix: boolean): number {
    let n = 0;
    this.lock();
    try {
      for (let s = 0; s < this.slots; s++) {
        const st = this.state[s];
        if (st !== State.Ready && st !== State.Filling) continue;
        const key = this.readText(s, 0, this.keyLen[s]!);
        const t = key.slice(key.indexOf(' ') + 1);
        if (prefix ? !t.startsWith(target) : t !== target) continue;
        this.kill(s);
        n++;
      }
    } finally {
      this.unlock();
    }
    return n;
  }

  get entries(): number {
    return Atomics.load(this.header, H_ENTRIES);
  }
  get bytes(): number {
    return Atomics.load(this.header, H_BYTES);
  }
  get evictions(): number {
    return Atomics.load(this.header, H_EVICTIONS);
  }
  get freeBlocks(): number {
    return Atomics.load(this.header, H_FREE);
  }

  /**
   * The counter row of the pool named `name` (its counts survive reloads that add, remove or
   * reorder pools), claimed on first use; -1 from `find`-only callers when it has none.
   */
  counterRow(name: string, claim = true): number {
    const hash = nameHash(name);
    const h = this.header;
    for (let row = 0; row < COUNTED_POOLS; row++) {
      const at = H_COUNTERS + row * 8;
      const v = Atomics.load(h, at);
      if (v === hash) return row;
      if (v === 0) {
        if (!claim) return -1;
        const was = Atomics.compareExchange(h, at, 0, hash);
        if (was === 0 || was === hash) return row;
      }
    }
    return claim ? COUNTED_POOLS - 1 : -1;
  }
  count(row: number, r: Result): void {
    Atomics.add(this.header, H_COUNTERS + row * 8 + 1 + r, 1);
  }
  counted(row: number, r: Result): number {
    return Atomics.load(this.header, H_COUNTERS + row * 8 + 1 + r);
  }
}

/** FNV-1a of a pool name, never 0 (0 marks a free counter row). */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h | 0 || 1;
}

/** The flags bit of an entry whose background refresh is running. */
const REFRESHING = 1 << 16;

let scratch = Buffer.allocUnsafe(1024);
function keyScratch(n: number): Buffer {
  if (scratch.length < n) scratch = Buffer.allocUnsafe(n * 2);
  return scratch;
}
