// WebSocket framing (src/upstream/websocket-frames.ts): frames of every length form (7-bit,
// 16-bit, 64-bit) round-trip masked and unmasked, byte by byte as well as whole; fragments are
// joined with control frames between them; the limits and protocol errors close with 1009 / 1002,
// a close frame with a code no frame may carry with 1002, one whose reason (or a text message) is
// not UTF-8 with 1007;
// the accept value is RFC 6455's example; a FrameWriter's batches (small ones copied out, large
// ones handed over) read back frame for frame; a reader that lends views hands out the chunk's bytes;
// a reader of a reused buffer (a shared read buffer) copies the frames split across its pushes.
import { describe, expect, it } from 'vitest';
import { acceptFor, closePayload, encodeFrame, FrameReader, FrameWriter, Opcode, type FrameHandler } from '../../../src/upstream/websocket-frames.js';

interface Seen {
  events: string[];
  messages: Buffer[];
}

function reader(masked: boolean, max = 1 << 20): { r: FrameReader; seen: Seen } {
  const seen: Seen = { events: [], messages: [] };
  const h: FrameHandler = {
    onMessage: (d, binary) => {
      seen.messages.push(d);
      seen.events.push(`${binary ? 'binary' : 'text'}:${d.length}`);
    },
    onPing: (d) => seen.events.push('ping:' + d.toString()),
    onPong: (d) => seen.events.push('pong:' + d.toString()),
    onClose: (code, reason) => seen.events.push(`close:${code}:${reason.toString()}`),
    onProtocolError: (code) => seen.events.push('error:' + code),
  };
  return { r: new FrameReader(h, max, masked), seen };
}

describe('WebSocket framing', () => {
  it("computes RFC 6455's example Sec-WebSocket-Accept", () => {
    expect(acceptFor('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('round-trips every length form, masked and not, whole and one byte at a time', () => {
    for (const masked of [true, false]) {
      for (const n of [0, 1, 125, 126, 65535, 65536, 200_000]) {
        const payload = Buffer.alloc(n);
        for (let i = 0; i < n; i++) payload[i] = (i * 31) & 255;
        const frame = encodeFrame(Opcode.Binary, payload, masked);
        for (const step of n < 70_000 ? [frame.length, 1] : [frame.length, 4093]) {
          const { r, seen } = reader(masked);
          for (let at = 0; at < frame.length; at += step) r.push(frame.subarray(at, at + step));
          expect(seen.events).toEqual([`binary:${n}`]);
          expect(seen.messages[0]!.equals(payload)).toBe(true);
        }
      }
    }
  });

  it('joins fragments, with control frames passed on between them', () => {
    const { r, seen } = reader(true);
    r.push(Buffer.concat([
      encodeFrame(Opcode.Text, Buffer.from('hel'), true, false),
      encodeFrame(Opcode.Ping, Buffer.from('p'), true),
      encodeFrame(Opcode.Continuation, Buffer.from('lo '), true, false),
      encodeFrame(Opcode.Continuation, Buffer.from('world'), true, true),
      encodeFrame(Opcode.Close, closePayload(4000, 'done'), true),
    ]));
    expect(seen.events).toEqual(['ping:p', 'text:11', 'close:4000:done']);
    expect(seen.messages[0]!.toString()).toBe('hello world');
  });

  it('closes with 1009 over the limit (fragments counted together) and 1002 on protocol errors', () => {
    let t = reader(false, 10);
    t.r.push(encodeFrame(Opcode.Binary, Buffer.alloc(11), false));
    expect(t.seen.events).toEqual(['error:1009']);
    t = reader(false, 10);
    t.r.push(Buffer.concat([encodeFrame(Opcode.Binary, Buffer.alloc(6), false, false), encodeFrame(Opcode.Continuation, Buffer.alloc(6), false)]));
    expect(t.seen.events).toEqual(['error:1009']);
    const bad: Buffer[] = [
      encodeFrame(Opcode.Text, Buffer.from('x'), true), // masked from a server
      encodeFrame(Opcode.Continuation, Buffer.from('x'), false), // continuation without a start
      encodeFrame(Opcode.Ping, Buffer.alloc(126), false), // long control frame
      encodeFrame(3, Buffer.alloc(1), false), // unknown opcode
      Buffer.from([0xc1, 0x00]), // RSV1 without an extension
    ];
    for (const frame of bad) {
      t = reader(false);
      t.r.push(frame);
      expect(t.seen.events).toEqual(['error:1002']);
    }
  });

  it("writes a turn's frames into one buffer that reads back frame for frame, small batches and large, masked and not", () => {
    for (const masked of [true, false]) {
      const w = new FrameWriter(masked);
      // every remainder of four around the small-frame masking loop, and each length form
      const sizes = [0, 1, 2, 3, 5, 6, 7, 32, 63, 64, 125, 126, 3000, 65535, 65536, 100_000];
      const payloads = sizes.map((n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 13 + n) & 255)));
      const { r, seen } = reader(masked);
      for (const batch of [payloads.slice(0, 11), payloads.slice(11)]) {
        for (const p of batch) w.frame(Opcode.Binary, p);
        const before = w.length;
        const out = w.take();
        expect(out.length).toBe(before);
        expect(w.length).toBe(0);
        r.push(out);
      }
      expect(seen.messages.map((m) => m.length)).toEqual(sizes);
      seen.messages.forEach((m, i) => expect(m.equals(payloads[i]!), `message ${i}`).toBe(true));
    }
    // a small batch taken is the caller's: the writer's next frames do not touch it
    const w = new FrameWriter(false);
    w.frame(Opcode.Text, Buffer.from('first'));
    const first = w.take();
    w.frame(Opcode.Text, Buffer.from('other'));
    w.take();
    expect(first.subarray(2).toString()).toBe('first');
  });

  it('lends a view of the chunk to a handler that keeps nothing, and copies for one that keeps messages', () => {
    const chunk = encodeFrame(Opcode.Binary, Buffer.from('view'), false);
    const got: Uint8Array[] = [];
    const h: FrameHandler = { onMessage: (d) => got.push(d), onPing: () => undefined, onPong: () => undefined, onClose: () => undefined, onProtocolError: () => undefined };
    new FrameReader(h, 100, false, false).push(chunk);
    new FrameReader(h, 100, false).push(chunk);
    chunk[2] = 'V'.charCodeAt(0);
    expect(got.map((b) => Buffer.from(b.buffer, b.byteOffset, b.length).toString())).toEqual(['View', 'view']);
  });

  it('reads frames split across pushes of one reused buffer (a shared read buffer), headers and payloads, fragments too', () => {
    const payloads = [Buffer.alloc(300, 7), Buffer.from('small'), Buffer.alloc(70_000, 9)];
    const frames = Buffer.concat([
      ...payloads.map((p) => encodeFrame(Opcode.Binary, p, false)),
      encodeFrame(Opcode.Text, Buffer.from('frag-'), false, false),
      encodeFrame(Opcode.Continuation, Buffer.from('ment'), false),
    ]);
    for (const step of [1, 3, 100, 4096]) {
      const got: string[] = [];
      const h: FrameHandler = {
        // a handler that keeps nothing: it reads the bytes during the call
        onMessage: (d) => got.push(d.length > 10 ? `${d.length}:${d[0]}:${d[d.length - 1]}:${d.every((b) => b === d[0])}` : Buffer.from(d).toString()),
        onPing: () => undefined,
        onPong: () => undefined,
        onClose: () => undefined,
        onProtocolError: (code) => got.push('error:' + code),
      };
      const r = new FrameReader(h, 1 << 20, false, false, true);
      // larger than a read, as the shared buffer is: the reader reads only the read's bytes
      const shared = Buffer.alloc(step + 7, 0xee);
      for (let at = 0; at < frames.length; at += step) {
        const n = Math.min(step, frames.length - at);
        frames.copy(shared, 0, at, at + n);
        r.push(shared, n);
        shared.fill(0xee); // the next read overwrites the buffer
      }
      expect(got, `step ${step}`).toEqual(['300:7:7:true', 'small', '70000:9:9:true', 'frag-ment']);
    }
  });

  it('refuses a close frame whose code no frame may carry (1002) or whose reason is not UTF-8 (1007)', () => {
    const close = (payload: Buffer): Buffer => encodeFrame(Opcode.Close, payload, false);
    const code = (n: number, reason: Buffer = Buffer.alloc(0)): Buffer => Buffer.concat([Buffer.from([n >> 8, n & 255]), reason]);
    for (const n of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      const { r, seen } = reader(false);
      r.push(close(code(n)));
      expect(seen.events, String(n)).toEqual(['error:1002']);
    }
    for (const n of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      const { r, seen } = reader(false);
      r.push(close(code(n, Buffer.from('κ ok'))));
      expect(seen.events, String(n)).toEqual([`close:${n}:κ ok`]);
    }
    const { r, seen } = reader(false);
    r.push(close(code(1000, Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80])))); // a UTF-16 surrogate's bytes
    expect(seen.events).toEqual(['error:1007']);
  });

  it('refuses a text message that is not UTF-8 (1007), whole or in fragments, and passes one split inside a character', () => {
    const bad = Buffer.from([0x68, 0xce, 0xba, 0xed, 0xa0, 0x80]); // a UTF-16 surrogate's bytes
    let t = reader(false);
    t.r.push(encodeFrame(Opcode.Text, bad, false));
    expect(t.seen.events).toEqual(['error:1007']);
    t = reader(true);
    t.r.push(Buffer.concat([encodeFrame(Opcode.Text, bad.subarray(0, 2), true, false), encodeFrame(Opcode.Continuation, bad.subarray(2), true)]));
    expect(t.seen.events).toEqual(['error:1007']);
    t = reader(false);
    t.r.push(Buffer.concat([encodeFrame(Opcode.Text, Buffer.from([0xce]), false, false), encodeFrame(Opcode.Continuation, Buffer.from([0xba]), false), encodeFrame(Opcode.Binary, bad, false)]));
    expect(t.seen.events).toEqual(['text:2', 'binary:6']);
    expect(t.seen.messages[0]!.toString()).toBe('κ');
  });

  it('reads a close frame without a code as 1005, and stops reading after a close', () => {
    const { r, seen } = reader(false);
    r.push(Buffer.concat([encodeFrame(Opcode.Close, closePayload(undefined), false), encodeFrame(Opcode.Text, Buffer.from('late'), false)]));
    expect(seen.events).toEqual(['close:1005:']);
  });
});
