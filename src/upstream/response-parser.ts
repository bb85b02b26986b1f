// Owns strict parsing of HTTP/1.1 responses from backends: status line, headers, and the three
// body framings (Content-Length, chunked, close-delimited), 1xx interim responses, and bodiless
// responses (HEAD, 204, 304). Anything ambiguous is invalid: a proxy that guesses at framing is
// open to response splitting. Pure: bytes in, callbacks out; no sockets. The head is parsed on the
// read's bytes, fields reported as offsets into them: no string is made per response.

import { listElements, TCHAR } from '../http-tokens.js';
import { READ_BUFFER, READ_WORDS, viewOf } from './read-buffer.js';

export const enum Framing {
  None = 0,
  Length = 1,
  Chunked = 2,
  Close = 3,
}

/**
 * The final response head, valid only during `onResponseHead`. Fields stay where the backend put
 * them in `bytes`, as offsets: the proxy passes them on without turning each into strings.
 */
export interface ResponseHead {
  status: number;
  /** Holds the head at [start, the end of the last field): "HTTP/1.x NNN reason" and the field
   * lines, without the final CRLFCRLF. The sink may rewrite those bytes in place (the parser is
   * done with them), and must not touch any other byte. Offsets below are into `bytes`. */
  bytes: Buffer;
  start: number;
  /** End of the status line ("HTTP/1.1 " is 9 bytes: the status text is [start + 9, statusEnd)). */
  statusEnd: number;
  /** Per field i: [4i] name start, [4i+1] name end (the colon), [4i+2] value start, [4i+3]
   * value end (the value without surrounding whitespace). The line is [name start, value end). */
  fields: Int32Array;
  count: number;
  framing: Framing;
  /** Content-Length for Framing.Length (and as sent, for HEAD and 304); -1 when unknown. */
  length: number;
  keepAlive: boolean;
  /** Lower-cased tokens of Connection other than close and keep-alive: fields to drop. */
  connectionTokens: string[] | null;
  /** Bit i set: field i (of the first 32) is Content-Length, Transfer-Encoding or Connection,
   * which the parser has read and the proxy never passes on (so it need not compare it again). */
  framingFields: number;
}

export interface ResponseSink {
  onResponseHead(head: ResponseHead): void;
  /** A view of body bytes, valid only during the call. */
  onResponseBody(chunk: Uint8Array): void;
  onResponseEnd(): void;
  onResponseInvalid(reason: string): void;
}

/** ASCII case-insensitive comparison of bytes [start, end) with a lower-case literal. */
export function bytesEqualLower(b: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((b[start + i]! | 32) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** A lower-case literal (letters, digits, '-') the parser compares fields with, also as words. */
interface Literal {
  readonly text: string;
  /** Its bytes as little-endian 32-bit words, in groups of four, the last padded with zeros. */
  readonly words: Int32Array;
}

function literal(text: string): Literal {
  const words = new Int32Array(Math.ceil(text.length / 4));
  for (let i = 0; i < text.length; i++) words[i >> 2]! |= text.charCodeAt(i) << (8 * (i & 3));
  return { text, words };
}

const CONTENT_LENGTH = literal('content-length');
const CONNECTION = literal('connection');
const KEEP_ALIVE = literal('keep-alive');

/**
 * bytesEqualLower against `lit`; in the worker's read buffer four bytes per step. ORing 0x20 into
 * a byte maps only A-Z onto the literal's letters (and CR onto '-', which no name or value holds:
 * CR ends them); no byte past `end` is read.
 */
function equalsLiteral(b: Buffer, start: number, end: number, lit: Literal): boolean {
  if (b !== READ_BUFFER) return bytesEqualLower(b, start, end, lit.text);
  const length = lit.text.length;
  if (end - start !== length) return false;
  const words = lit.words;
  const whole = length >> 2;
  for (let i = 0; i < whole; i++) {
    if ((READ_WORDS.getInt32(start + 4 * i, true) | 0x20202020) !== words[i]) return false;
  }
  for (let i = whole * 4; i < length; i++) {
    if ((READ_BUFFER[start + i]! | 32) !== (words[i >> 2]! >>> (8 * (i & 3))) % 256) return false;
  }
  return true;
}

const enum S {
  Head = 0,
  BodyLength = 1,
  ChunkSize = 2,
  ChunkData = 3,
  ChunkDataEnd = 4,
  Trailers = 5,
  BodyClose = 6,
  Done = 7,
  Invalid = 8,
}

const MAX_HEAD = 64 * 1024;
/** parseHead's outcomes other than the offset after the head. */
const INCOMPLETE = -1;
const INVALID = -2;
const MAX_CHUNK_LINE = 4096;
const CR = 13;
const LF = 10;


/** A non-negative decimal of at most 15 digits in bytes [start, end); -1 when it is not one. */
function parseDigits(b: Buffer, start: number, end: number): number {
  if (end === start || end - start > 15) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

function skipBws(b: Buffer, i: number, end: number): number {
  while (i < end && (b[i] === 32 || b[i] === 9)) i++;
  return i;
}

/** After a token at `i`: where it ends (== i when there is none). */
function skipToken(b: Buffer, i: number, end: number): number {
  while (i < end && TCHAR[b[i]!] === 1) i++;
  return i;
}

/** After a quoted-string that opens at `i` (a '"'): where it ends, -1 when it is not one. */
function skipQuoted(b: Buffer, i: number, end: number): number {
  for (i++; i < end; i++) {
    const c = b[i]!;
    if (c === 34) return i + 1;
    if (c === 92) {
      // quoted-pair: "\" ( HTAB / SP / VCHAR / obs-text )
      if (++i >= end) return -1;
      const q = b[i]!;
      if ((q < 32 && q !== 9) || q === 127) return -1;
    } else if ((c < 32 && c !== 9) || c === 127) {
      return -1;
    }
  }
  return -1;
}

/**
 * Bytes [i, end) after a chunk size are exactly chunk-ext (RFC 9112 §7.1.1):
 * *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ). Anything else, a bare ';'
 * included, makes the response invalid: a chunk line read two ways is how bodies get smuggled.
 */
function validChunkExtensions(b: Buffer, i: number, end: number): boolean {
  while (i < end) {
    i = skipBws(b, i, end);
    if (b[i] !== 59) return false;
    i = skipBws(b, i + 1, end);
    const nameEnd = skipToken(b, i, end);
    if (nameEnd === i) return false;
    i = skipBws(b, nameEnd, end);
    if (i < end && b[i] === 61) {
      i = skipBws(b, i + 1, end);
      if (i >= end) return false;
      const valueEnd = b[i] === 34 ? skipQuoted(b, i, end) : skipToken(b, i, end);
      if (valueEnd <= i) return false;
      i = valueEnd;
    }
  }
  return true;
}

/** "HTTP/1." at `at`, exactly (the protocol name is case-sensitive). */
function startsWithHttp1(b: Buffer, at: number): boolean {
  return b[at] === 72 && b[at + 1] === 84 && b[at + 2] === 84 && b[at + 3] === 80 && b[at + 4] === 47 && b[at + 5] === 49 && b[at + 6] === 46;
}

const STATUS_LINE_START = 'HTTP/1.';

/** Bytes [start, limit) (fewer than 13) are the beginning of "HTTP/1.x NNN", as far as they go. */
function couldStartStatusLine(b: Buffer, start: number, limit: number): boolean {
  for (let i = start; i < limit; i++) {
    const k = i - start;
    const c = b[i]!;
    if (k < 7 ? c !== STATUS_LINE_START.charCodeAt(k) : k === 7 ? c !== 48 && c !== 49 : k === 8 ? c !== 32 : c < 48 || c > 57) return false;
  }
  return true;
}

/** Where CRLFCRLF starts within [from, to) of `b`; -1 when it is not there. */
function indexOfBlankLine(b: Buffer, from: number, to: number): number {
  for (let i = from + 3; i < to; i++) {
    const c = b[i]!;
    if (c === LF) {
      if (b[i - 1] === CR && b[i - 2] === LF && b[i - 3] === CR) return i - 3;
    } else if (c !== CR) {
      i += 3; // no CRLFCRLF holds this byte: the next one could end at i + 4
    }
  }
  return -1;
}

/**
 * Where the field value at `p` ends: the CR at its end, or `end`; -1 when it holds a control
 * character other than HTAB (obs-text, 0x80-0xff, is allowed). In the worker's read buffer four
 * bytes are checked at a time while none of them is below 0x20 or 0x7f (a value rarely holds any
 * but the CR after it): a 29-byte Date value in 20 ns against 52 for a byte loop. The view must
 * be a constant for that: a DataView made per buffer, or looked up, costs more than it saves.
 */
function scanValue(b: Buffer, p: number, end: number): number {
  if (b === READ_BUFFER) {
    for (const last = end - 4; p <= last; p += 4) {
      const w = READ_WORDS.getInt32(p, true);
      const x = w ^ 0x7f7f7f7f;
      // any byte below 0x20 sets a high bit of (w - 0x20202020) & ~w; any 0x7f byte, of (x - 0x01010101) & ~x
      if (((((w - 0x20202020) | 0) & ~w) | (((x - 0x01010101) | 0) & ~x)) & 0x80808080) break;
    }
  }
  for (; p < end; p++) {
    const c = b[p]!;
    if (c < 32 || c === 127) {
      if (c === CR) return p;
      if (c !== 9) return -1;
    }
  }
  return p;
}

/** Field offsets of the head being parsed (see ResponseHead.fields); grown when a head has more. */
let FIELDS: Int32Array = new Int32Array(4 * 32);

function growFields(fields: Int32Array): Int32Array {
  const bigger = new Int32Array(fields.length * 2);
  bigger.set(fields);
  return bigger;
}

export class ResponseParser {
  private state: S = S.Done;
  private sink: ResponseSink;
  private headRequest = false;
  /** Bytes of an incomplete head or chunk-size line carried over from the previous read. */
  private pending: Buffer | null = null;
  private remaining = 0;
  /** Handed to the sink for each final head; its fields are shared by every parser of the thread. */
  private readonly head: ResponseHead = {
    status: 0,
    bytes: Buffer.alloc(0),
    start: 0,
    statusEnd: 0,
    fields: FIELDS,
    count: 0,
    framing: Framing.None,
    length: -1,
    keepAlive: false,
    connectionTokens: null,
    framingFields: 0,
  };

  constructor(sink: ResponseSink) {
    this.sink = sink;
  }

  /** Prepare for the response to a new request. */
  expect(sink: ResponseSink, headRequest: boolean): void {
    this.sink = sink;
    this.headRequest = headRequest;
    this.state = S.Head;
    this.pending = null;
    this.remaining = 0;
  }

  /** True once a final head was parsed: a failure after this point is mid-body. */
  get inBody(): boolean {
    return this.state !== S.Head && this.state !== S.Invalid;
  }

  /**
   * Feed bytes [0, len) of `buf`, read from the backend. Returns the count of bytes that belong to no response
   * (sent after the response ended): the caller must treat a non-zero count as a protocol error.
   */
  execute(buf: Buffer, len: number = buf.length): number {
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case S.Head: {
          pos = this.readHead(buf, pos, len);
          break;
        }
        case S.BodyLength: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = viewOf(buf, pos, n);
          pos += n;
          if (this.remaining === 0) this.state = S.Done;
          this.sink.onResponseBody(chunk);
          if (this.state === S.Done) this.sink.onResponseEnd();
          break;
        }
        case S.ChunkSize: {
          pos = this.readChunkSize(buf, pos, len);
          break;
        }
        case S.ChunkData: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = viewOf(buf, pos, n);
          pos += n;
          if (this.remaining === 0) {
            this.state = S.ChunkDataEnd;
            this.remaining = 2;
          }
          this.sink.onResponseBody(chunk);
          break;
        }
        case S.ChunkDataEnd: {
          // CRLF after chunk data, possibly split across reads
          const c = buf[pos]!;
          if ((this.remaining === 2 && c !== CR) || (this.remaining === 1 && c !== LF)) {
            return this.invalid('chunk data not followed by CRLF');
          }
          pos++;
          if (--this.remaining === 0) this.state = S.ChunkSize;
          break;
        }
        case S.Trailers: {
          pos = this.readTrailers(buf, pos, len);
          break;
        }
        case S.BodyClose: {
          const chunk = pos === 0 && len === buf.length ? buf : viewOf(buf, pos, len - pos);
          pos = len;
          this.sink.onResponseBody(chunk);
          break;
        }
        case S.Done:
          return len - pos;
        case S.Invalid:
          return 0;
      }
    }
    return 0;
  }

  /** The backend closed the connection. Ends a close-delimited body; anything else is truncation. */
  finish(): 'complete' | 'truncated' | 'idle' {
    if (this.state === S.BodyClose) {
      this.state = S.Done;
      this.sink.onResponseEnd();
      return 'complete';
    }
    if (this.state === S.Done || this.state === S.Invalid) return 'idle';
    return 'truncated';
  }

  private invalid(reason: string): number {
    this.state = S.Invalid;
    this.pending = null;
    this.sink.onResponseInvalid(reason);
    return 0;
  }

  /** `invalid`, for parseHead: its INVALID outcome. */
  private refuse(reason: string): number {
    this.invalid(reason);
    return INVALID;
  }

  /** Join carried-over bytes with a new read, only when a line or head spans reads. */
  private take(buf: Buffer, pos: number, len: number): Buffer {
    if (this.pending === null) return pos === 0 && len === buf.length ? buf : buf.subarray(pos, len);
    const joined = Buffer.concat([this.pending, buf.subarray(pos, len)]);
    this.pending = null;
    return joined;
  }

  private readHead(input: Buffer, pos: number, len: number): number {
    if (this.pending === null) {
      // the common case, a whole head in one read: parsed in one pass, no search for its end first
      const after = this.parseHead(input, pos, Math.min(len, pos + MAX_HEAD + 4));
      if (after === INVALID) return len;
      if (after !== INCOMPLETE) return after;
      if (len - pos > MAX_HEAD) return this.invalid('response head larger than 64 KiB');
      this.pending = Buffer.from(input.subarray(pos, len)); // copy: the read buffer is reused
      return len;
    }
    // a head split across reads: the bytes carried over, joined with this read; its end is
    // searched for from a little before the join (a CRLFCRLF may be split too), so a head that
    // trickles in is not parsed again from its start for every read
    const carried = this.pending.length;
    const joined = Buffer.concat([this.pending, input.subarray(pos, len)]);
    this.pending = null;
    const end = indexOfBlankLine(joined, carried > 3 ? carried - 3 : 0, joined.length);
    if (end < 0) {
      if (joined.length > MAX_HEAD) return this.invalid('response head larger than 64 KiB');
      this.pending = joined;
      return len;
    }
    if (end > MAX_HEAD) return this.invalid('response head larger than 64 KiB');
    const after = this.parseHead(joined, 0, end + 4);
    if (after === INCOMPLETE) return this.invalid('malformed status line'); // shorter than one
    return after === INVALID ? len : pos + after - carried;
  }

  /**
   * Parses the head that starts at `start` in `b`, up to its blank line, reading no byte at or
   * after `limit`. Returns the offset after the blank line; INCOMPLETE when the bytes ran out
   * first (nothing was reported); INVALID when it made the parser invalid.
   */
  private parseHead(b: Buffer, start: number, limit: number): number {
    // status line: HTTP/1.x SP 3DIGIT [SP reason]
    if (limit - start < 13) {
      // too few bytes for the status line: wait for more only while they can still begin one
      return couldStartStatusLine(b, start, limit) ? INCOMPLETE : this.refuse('malformed status line');
    }
    if (!startsWithHttp1(b, start) || b[start + 8] !== 32) return this.refuse('malformed status line');
    const minor = b[start + 7]!;
    if (minor !== 48 && minor !== 49) return this.refuse('unsupported HTTP version');
    const d0 = b[start + 9]! - 48;
    const d1 = b[start + 10]! - 48;
    const d2 = b[start + 11]! - 48;
    let eol = start + 12;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (b[eol] !== 32 && b[eol] !== CR)) {
      return this.refuse('malformed status code');
    }
    const status = d0 * 100 + d1 * 10 + d2;
    // reason-phrase = *( HTAB / SP / VCHAR / obs-text )
    while (eol < limit && b[eol] !== CR) {
      const c = b[eol]!;
      if ((c < 32 && c !== 9) || c === 127) return this.refuse('invalid character in status line');
      eol++;
    }
    if (eol === limit) return INCOMPLETE;
    const statusEnd = eol;

    let fields = FIELDS;
    let count = 0;
    let contentLength = -1;
    let chunked = false;
    let transferEncoding = false;
    let close = minor === 48; // HTTP/1.0 backends get no keep-alive from us
    let connectionTokens: string[] | null = null;
    let framingFields = 0;
    let p = eol; // at the CR that ends the line before
    for (;;) {
      if (p + 4 > limit) return INCOMPLETE; // a line's CRLF and the two bytes after it
      // every line after the status line starts with CRLF
      if (b[p] !== CR || b[p + 1] !== LF) return this.refuse('invalid character in header value');
      p += 2;
      if (b[p] === CR) {
        if (b[p + 1] === LF) break; // the blank line: the head ends
        return this.refuse('empty header line');
      }
      const nameStart = p;
      while (p < limit && TCHAR[b[p]!] === 1) p++;
      if (p === limit) return INCOMPLETE;
      if (p === nameStart || b[p] !== 58) return this.refuse('header line without a name and colon');
      const nameEnd = p++;
      while (p < limit && (b[p] === 32 || b[p] === 9)) p++;
      const valueStart = p;
      p = scanValue(b, p, limit);
      if (p < 0) return this.refuse('invalid character in header value');
      if (p === limit) return INCOMPLETE;
      let valueEnd = p;
      while (valueEnd > valueStart && (b[valueEnd - 1] === 32 || b[valueEnd - 1] === 9)) valueEnd--;
      if (count * 4 === fields.length) fields = FIELDS = growFields(fields);
      fields[4 * count] = nameStart;
      fields[4 * count + 1] = nameEnd;
      fields[4 * count + 2] = valueStart;
      fields[4 * count + 3] = valueEnd;
      count++;
      switch (nameEnd - nameStart) {
        case 14:
          if (equalsLiteral(b, nameStart, nameEnd, CONTENT_LENGTH)) {
            const n = parseDigits(b, valueStart, valueEnd);
            if (n < 0) return this.refuse('invalid Content-Length');
            if (contentLength >= 0 && contentLength !== n) return this.refuse('conflicting Content-Length values');
            contentLength = n;
            if (count <= 32) framingFields |= 1 << (count - 1); // a shift by 32 or more would wrap onto another field
          }
          break;
        case 17:
          if (bytesEqualLower(b, nameStart, nameEnd, 'transfer-encoding')) {
            transferEncoding = true;
            chunked = bytesEqualLower(b, valueStart, valueEnd, 'chunked');
            if (!chunked) return this.refuse('unsupported Transfer-Encoding');
            if (count <= 32) framingFields |= 1 << (count - 1);
          }
          break;
        case 10:
          if (equalsLiteral(b, nameStart, nameEnd, CONNECTION)) {
            if (count <= 32) framingFields |= 1 << (count - 1);
            if (equalsLiteral(b, valueStart, valueEnd, KEEP_ALIVE)) {
              if (minor === 48) close = false;
            } else if (bytesEqualLower(b, valueStart, valueEnd, 'close')) {
              close = true;
            } else {
              for (const token of listElements(b.toString('latin1', valueStart, valueEnd)) ?? []) {
                if (token === 'close') close = true;
                else if (token === 'keep-alive') {
                  if (minor === 48) close = false;
                } else (connectionTokens ??= []).push(token);
              }
            }
          }
          break;
      }
    }
    if (transferEncoding && contentLength >= 0) return this.refuse('both Content-Length and Transfer-Encoding');

    if (status < 200) {
      if (status === 101) return this.refuse('unexpected 101 Switching Protocols');
      return p + 2; // interim response: swallowed, the final one follows (state stays Head)
    }

    let framing: Framing;
    let length = 0;
    if (this.headRequest || status === 204 || status === 304) {
      framing = Framing.None;
      length = contentLength; // forwarded to HEAD clients as-is
    } else if (chunked) {
      framing = Framing.Chunked;
      length = -1;
    } else if (contentLength >= 0) {
      framing = contentLength === 0 ? Framing.None : Framing.Length;
      length = contentLength;
    } else {
      framing = Framing.Close;
      length = -1;
      close = true;
    }

    switch (framing) {
      case Framing.None:
        this.state = S.Done;
        break;
      case Framing.Length:
        this.state = S.BodyLength;
        this.remaining = length;
        break;
      case Framing.Chunked:
        this.state = S.ChunkSize;
        break;
      case Framing.Close:
        this.state = S.BodyClose;
        break;
    }
    const head = this.head;
    head.status = status;
    head.bytes = b;
    head.start = start;
    head.statusEnd = statusEnd;
    head.fields = fields;
    head.count = count;
    head.framing = framing;
    head.length = length;
    head.keepAlive = !close;
    head.connectionTokens = connectionTokens;
    head.framingFields = framingFields;
    this.sink.onResponseHead(head);
    if (this.state === S.Done) this.sink.onResponseEnd();
    return p + 2;
  }

  private readChunkSize(input: Buffer, pos: number, len: number): number {
    const carried = this.pending === null ? 0 : this.pending.length;
    const buf = this.take(input, pos, len);
    const eol = buf.indexOf(LF, carried > 0 ? carried - 1 : 0);
    if (eol < 0) {
      if (buf.length > MAX_CHUNK_LINE) return this.invalid('chunk size line too long');
      this.pending = Buffer.from(buf);
      return len;
    }
    if (eol === 0 || buf[eol - 1] !== CR) return this.invalid('chunk size line not ended by CRLF');
    let size = 0;
    let digits = 0;
    let i = 0;
    for (; i < eol - 1; i++) {
      const c = buf[i]!;
      let v: number;
      if (c >= 48 && c <= 57) v = c - 48;
      else if (c >= 97 && c <= 102) v = c - 87;
      else if (c >= 65 && c <= 70) v = c - 55;
      else break;
      if (++digits > 12) return this.invalid('chunk size too large');
      size = size * 16 + v;
    }
    if (digits === 0) return this.invalid('invalid chunk size');
    if (i < eol - 1 && !validChunkExtensions(buf, i, eol - 1)) return this.invalid('invalid chunk extension');
    const consumed = eol + 1 - carried;
    if (size === 0) {
      this.state = S.Trailers;
    } else {
      this.state = S.ChunkData;
      this.remaining = size;
    }
    return pos + consumed;
  }

  /** Trailer fields after the last chunk are read and dropped; the empty line ends the body. */
  private readTrailers(input: Buffer, pos: number, len: number): number {
    const carried = this.pending === null ? 0 : this.pending.length;
    const buf = this.take(input, pos, len);
    // common case: no trailers, the next two bytes are CRLF
    if (buf.length >= 2 && buf[0] === CR && buf[1] === LF) {
      this.state = S.Done;
      this.sink.onResponseEnd();
      return pos + 2 - carried;
    }
    const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
    if (end < 0) {
      if (buf.length > MAX_HEAD) return this.invalid('trailer section too large');
      this.pending = Buffer.from(buf);
      return len;
    }
    const text = buf.toString('latin1', 0, end);
    let p = 0;
    while (p < text.length) {
      let lineEnd = text.indexOf('\r\n', p);
      if (lineEnd < 0) lineEnd = text.length;
      const colon = text.indexOf(':', p);
      if (colon <= p || colon > lineEnd) return this.invalid('malformed trailer field');
      p = lineEnd + 2;
    }
    this.state = S.Done;
    this.sink.onResponseEnd();
    return pos + end + 4 - carried;
  }
}
