// Owns WebSocket framing (RFC 6455) over a byte stream: frames encoded (masked when a client
// sends them), frames read back into whole messages (fragments joined, control frames passed on
// as they come, sizes bounded), and the handshake's key and accept values. Shared by corelb's
// backend-side client (websocket.ts) and by the tests' client and echo server.

import { createHash, randomFillSync } from 'node:crypto';

export const enum Opcode {
  Continuation = 0,
  Text = 1,
  Binary = 2,
  Close = 8,
  Ping = 9,
  Pong = 10,
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept a server answers to `key`. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A fresh Sec-WebSocket-Key (16 random bytes, base64). */
export function newKey(): string {
  return randomFillSync(Buffer.allocUnsafe(16)).toString('base64');
}

/** Random bytes for masking keys, refilled in blocks (one system call per 1024 frames). */
const maskPool = Buffer.allocUnsafe(4096);
let maskOffset = maskPool.length;

/**
 * One frame (FIN set unless `fin` is false) with `payload`; masked with a fresh key when `mask`
 * (a client's frames), the payload then copied XORed into the frame.
 */
export function encodeFrame(opcode: number, payload: Uint8Array, mask: boolean, fin = true): Buffer {
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const headLen = 2 + lenBytes + (mask ? 4 : 0);
  const frame = Buffer.allocUnsafe(headLen + n);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  const maskBit = mask ? 0x80 : 0;
  if (lenBytes === 0) frame[1] = maskBit | n;
  else if (lenBytes === 2) {
    frame[1] = maskBit | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = maskBit | 127;
    frame.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  if (!mask) {
    frame.set(payload, headLen);
    return frame;
  }
  if (maskOffset + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskOffset = 0;
  }
  const k = headLen - 4;
  maskPool.copy(frame, k, maskOffset, maskOffset + 4);
  maskOffset += 4;
  frame.set(payload, headLen);
  maskInPlace(frame, headLen, n, frame.subarray(k, k + 4));
  return frame;
}

/**
 * XOR `n` bytes of `buf` from `start` with `key` (payload byte i with key[i & 3]): byte by byte up
 * to a 4-byte boundary, then a word at a time (a 64 KiB message costs a sixteenth of a byte loop).
 */
export function maskInPlace(buf: Uint8Array, start: number, n: number, key: Uint8Array): void {
  let i = 0;
  const lead = Math.min(n, (4 - ((buf.byteOffset + start) & 3)) & 3);
  for (; i < lead; i++) buf[start + i]! ^= key[i & 3]!;
  const words = (n - i) >>> 2;
  if (words > 0) {
    // the key rotated to the first aligned byte, as a little-endian word (the platforms Node runs on)
    const w = key[i & 3]! | (key[(i + 1) & 3]! << 8) | (key[(i + 2) & 3]! << 16) | (key[(i + 3) & 3]! << 24);
    const view = new Uint32Array(buf.buffer, buf.byteOffset + start + i, words);
    for (let j = 0; j < words; j++) view[j]! ^= w;
    i += words * 4;
  }
  for (; i < n; i++) buf[start + i]! ^= key[i & 3]!;
}

/** A close frame's payload: the code (none when undefined) and a reason of at most 123 bytes. */
export function closePayload(code: number | undefined, reason: string | Uint8Array = ''): Buffer {
  if (code === undefined || code === 1005 || code === 1006) return Buffer.alloc(0);
  const r = typeof reason === 'string' ? Buffer.from(reason) : Buffer.from(reason);
  const out = Buffer.allocUnsafe(2 + Math.min(r.length, 123));
  out.writeUInt16BE(code, 0);
  r.copy(out, 2, 0, out.length - 2);
  return out;
}

export interface FrameHandler {
  /** A whole message (fragments joined). */
  onMessage(data: Buffer, binary: boolean): void;
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /** A close frame: its code (1005 when it had none) and reason. */
  onClose(code: number, reason: Buffer): void;
  /** The peer broke the protocol (1002) or sent a message over the limit (1009): stop reading. */
  onProtocolError(code: number, why: string): void;
}

/** Reads frames from the chunks pushed into it; stops after a close frame or an error. */
export class FrameReader {
  private readonly handler: FrameHandler;
  private readonly maxMessage: number;
  private readonly expectMasked: boolean;
  /** Bytes of a frame header not yet complete. */
  private head: Buffer | null = null;
  // the frame being read
  private opcode = 0;
  private fin = false;
  private maskKey: Buffer | null = null;
  private remaining = -1; // -1: reading a header
  private parts: Buffer[] = [];
  // the message being assembled from fragments
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private fragmentBytes = 0;
  private stopped = false;

  constructor(handler: FrameHandler, maxMessage: number, expectMasked: boolean) {
    this.handler = handler;
    this.maxMessage = maxMessage;
    this.expectMasked = expectMasked;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.stopped) {
      if (this.remaining < 0) {
        at = this.readHeader(chunk, at);
        if (this.remaining === 0) this.frameDone();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      this.parts.push(chunk.subarray(at, at + take));
      at += take;
      this.remaining -= take;
      if (this.remaining === 0) this.frameDone();
    }
  }

  /** Consumes header bytes from `chunk` at `at`; returns the new offset. */
  private readHeader(chunk: Buffer, at: number): number {
    let buf = chunk;
    let start = at;
    if (this.head !== null) {
      buf = Buffer.concat([this.head, chunk.subarray(at)]);
      start = 0;
    }
    const avail = buf.length - start;
    if (avail < 2) return this.keepHead(buf, start, chunk);
    const b0 = buf[start]!, b1 = buf[start + 1]!;
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    const lenBytes = len === 126 ? 2 : len === 127 ? 8 : 0;
    const need = 2 + lenBytes + (masked ? 4 : 0);
    if (avail < need) return this.keepHead(buf, start, chunk);
    if (lenBytes === 2) len = buf.readUInt16BE(start + 2);
    else if (lenBytes === 8) len = buf.readUInt32BE(start + 2) * 0x1_0000_0000 + buf.readUInt32BE(start + 6);
    const used = need - (this.head === null ? 0 : this.head.length);
    this.head = null;
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if ((b0 & 0x70) !== 0) return this.fail(1002, 'reserved bits set (no extension was agreed)');
    if (masked !== this.expectMasked) return this.fail(1002, masked ? 'masked frame from a server' : 'unmasked frame from a client');
    if (opcode >= 8) {
      if (opcode > 10) return this.fail(1002, 'unknown control opcode');
      if (!fin || len > 125) return this.fail(1002, 'fragmented or long control frame');
    } else if (opcode > 2) {
      return this.fail(1002, 'unknown data opcode');
    } else if (opcode === Opcode.Continuation ? this.fragmentOpcode === 0 : this.fragmentOpcode !== 0) {
      return this.fail(1002, 'bad fragment sequence');
    }
    if (opcode < 8 && this.fragmentBytes + len > this.maxMessage) return this.fail(1009, 'message over the size limit');
    this.opcode = opcode;
    this.fin = fin;
    this.maskKey = masked ? Buffer.from(buf.subarray(start + need - 4, start + need)) : null;
    this.remaining = len;
    this.parts = [];
    return at + used;
  }

  private keepHead(buf: Buffer, start: number, chunk: Buffer): number {
    this.head = Buffer.from(buf.subarray(start));
    return chunk.length;
  }

  private fail(code: number, why: string): number {
    this.stopped = true;
    this.handler.onProtocolError(code, why);
    return Number.MAX_SAFE_INTEGER;
  }

  private frameDone(): void {
    const parts = this.parts;
    this.parts = [];
    this.remaining = -1;
    let payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const key = this.maskKey;
    if (key !== null) {
      payload = Buffer.from(payload); // the chunk is the socket's: unmask a copy
      maskInPlace(payload, 0, payload.length, key);
    }
    const h = this.handler;
    switch (this.opcode) {
      case Opcode.Ping:
        h.onPing(payload);
        return;
      case Opcode.Pong:
        h.onPong(payload);
        return;
      case Opcode.Close: {
        this.stopped = true;
        if (payload.length === 1) {
          h.onProtocolError(1002, 'close frame of one byte');
          return;
        }
        h.onClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1005, payload.subarray(2));
        return;
      }
    }
    if (this.fin && this.fragmentOpcode === 0) {
      // copied: a subarray of the socket's chunk may not outlive this call
      h.onMessage(parts.length === 1 && key === null ? Buffer.from(payload) : payload, this.opcode === Opcode.Binary);
      return;
    }
    if (this.fragmentOpcode === 0) this.fragmentOpcode = this.opcode;
    this.fragments.push(key === null && parts.length === 1 ? Buffer.from(payload) : payload);
    this.fragmentBytes += payload.length;
    if (!this.fin) return;
    const message = Buffer.concat(this.fragments);
    const binary = this.fragmentOpcode === Opcode.Binary;
    this.fragments = [];
    this.fragmentOpcode = 0;
    this.fragmentBytes = 0;
    h.onMessage(message, binary);
  }
}
