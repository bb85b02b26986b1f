// Owns strict parsing of HTTP/1.1 responses from backends: status line, headers, and the three
// body framings (Content-Length, chunked, close-delimited), 1xx interim responses, and bodiless
// responses (HEAD, 204, 304). Anything ambiguous is invalid: a proxy that guesses at framing is
// open to response splitting. Pure: bytes in, callbacks out; no sockets.

export const enum Framing {
  None = 0,
  Length = 1,
  Chunked = 2,
  Close = 3,
}

export interface ResponseSink {
  /**
   * Final response head. `headers` is a flat [name, value, name, value, ...] list as the backend
   * sent it (names not lower-cased, bytes decoded as latin-1); `connectionTokens` lists lower-cased
   * tokens of Connection; `latin1` tells that some value has bytes above 0x7f (obs-text), which
   * must be written back as latin-1 bytes, not as UTF-8.
   */
  onResponseHead(status: number, reason: string, headers: string[], framing: Framing, length: number, keepAlive: boolean, connectionTokens: string[] | null, latin1: boolean): void;
  /** A view of body bytes, valid only during the call. */
  onResponseBody(chunk: Buffer): void;
  onResponseEnd(): void;
  onResponseInvalid(reason: string): void;
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
const MAX_CHUNK_LINE = 4096;
const CR = 13;
const LF = 10;

/** Token characters of RFC 9110 field names. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** ASCII case-insensitive comparison with a lower-case literal, without allocating. */
export function equalsLower(s: string, lower: string): boolean {
  if (s.length !== lower.length) return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function isDigits(s: string): boolean {
  if (s.length === 0 || s.length > 15) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

export class ResponseParser {
  private state: S = S.Done;
  private sink: ResponseSink;
  private headRequest = false;
  /** Bytes of an incomplete head or chunk-size line carried over from the previous read. */
  private pending: Buffer | null = null;
  private remaining = 0;

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
   * Feed bytes read from the backend. Returns the count of bytes that belong to no response
   * (sent after the response ended): the caller must treat a non-zero count as a protocol error.
   */
  execute(buf: Buffer): number {
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      switch (this.state) {
        case S.Head: {
          pos = this.readHead(buf, pos);
          break;
        }
        case S.BodyLength: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = buf.subarray(pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = S.Done;
          this.sink.onResponseBody(chunk);
          if (this.state === S.Done) this.sink.onResponseEnd();
          break;
        }
        case S.ChunkSize: {
          pos = this.readChunkSize(buf, pos);
          break;
        }
        case S.ChunkData: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = buf.subarray(pos, pos + n);
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
          pos = this.readTrailers(buf, pos);
          break;
        }
        case S.BodyClose: {
          const chunk = pos === 0 ? buf : buf.subarray(pos);
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

  /** Join carried-over bytes with a new read, only when a line or head spans reads. */
  private take(buf: Buffer, pos: number): Buffer {
    if (this.pending === null) return pos === 0 ? buf : buf.subarray(pos);
    const joined = Buffer.concat([this.pending, buf.subarray(pos)]);
    this.pending = null;
    return joined;
  }

  private readHead(input: Buffer, pos: number): number {
    const carried = this.pending === null ? 0 : this.pending.length;
    const buf = this.take(input, pos);
    // search from a little before the join so a CRLFCRLF split across reads is found
    const end = buf.indexOf('\r\n\r\n', carried > 3 ? carried - 3 : 0, 'latin1');
    if (end < 0) {
      if (buf.length > MAX_HEAD) return this.invalid('response head larger than 64 KiB');
      this.pending = Buffer.from(buf); // copy: the read buffer is reused
      return input.length;
    }
    if (end > MAX_HEAD) return this.invalid('response head larger than 64 KiB');
    const consumedOfInput = end + 4 - carried; // bytes of `input` after `pos` that the head used
    const ok = this.parseHead(buf.toString('latin1', 0, end));
    if (!ok) return 0;
    return pos + consumedOfInput;
  }

  /** Parses one head (without its final CRLFCRLF). Returns false when it made the parser invalid. */
  private parseHead(head: string): boolean {
    // status line: HTTP/1.x SP 3DIGIT [SP reason]
    let eol = head.indexOf('\r\n');
    if (eol < 0) eol = head.length;
    if (eol < 12 || !head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 32) {
      this.invalid('malformed status line');
      return false;
    }
    const minor = head.charCodeAt(7);
    if (minor !== 48 && minor !== 49) {
      this.invalid('unsupported HTTP version');
      return false;
    }
    const d0 = head.charCodeAt(9) - 48;
    const d1 = head.charCodeAt(10) - 48;
    const d2 = head.charCodeAt(11) - 48;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (eol > 12 && head.charCodeAt(12) !== 32)) {
      this.invalid('malformed status code');
      return false;
    }
    const status = d0 * 100 + d1 * 10 + d2;
    const reason = eol > 13 ? head.slice(13, eol) : '';

    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let transferEncoding = false;
    let close = minor === 48; // HTTP/1.0 backends get no keep-alive from us
    let connectionTokens: string[] | null = null;
    let latin1 = false;
    let p = eol + 2;
    while (p < head.length) {
      let lineEnd = head.indexOf('\r\n', p);
      if (lineEnd < 0) lineEnd = head.length;
      const colon = head.indexOf(':', p);
      if (colon <= p || colon > lineEnd) {
        this.invalid(p === lineEnd ? 'empty header line' : 'header line without a name and colon');
        return false;
      }
      for (let i = p; i < colon; i++) {
        if (TCHAR[head.charCodeAt(i)] !== 1) {
          this.invalid('invalid character in header name');
          return false;
        }
      }
      let vs = colon + 1;
      let ve = lineEnd;
      while (vs < ve && (head.charCodeAt(vs) === 32 || head.charCodeAt(vs) === 9)) vs++;
      while (ve > vs && (head.charCodeAt(ve - 1) === 32 || head.charCodeAt(ve - 1) === 9)) ve--;
      for (let i = vs; i < ve; i++) {
        const c = head.charCodeAt(i);
        if ((c < 32 && c !== 9) || c === 127) {
          this.invalid('invalid character in header value');
          return false;
        }
        if (c > 127) latin1 = true;
      }
      const name = head.slice(p, colon);
      const value = head.slice(vs, ve);
      headers.push(name, value);
      switch (name.length) {
        case 14:
          if (equalsLower(name, 'content-length')) {
            if (!isDigits(value)) {
              this.invalid('invalid Content-Length');
              return false;
            }
            const n = Number(value);
            if (contentLength >= 0 && contentLength !== n) {
              this.invalid('conflicting Content-Length values');
              return false;
            }
            contentLength = n;
          }
          break;
        case 17:
          if (equalsLower(name, 'transfer-encoding')) {
            transferEncoding = true;
            chunked = equalsLower(value, 'chunked');
            if (!chunked) {
              this.invalid('unsupported Transfer-Encoding');
              return false;
            }
          }
          break;
        case 10:
          if (equalsLower(name, 'connection')) {
            for (const raw of value.split(',')) {
              const token = raw.trim().toLowerCase();
              if (token === 'close') close = true;
              else if (token === 'keep-alive') {
                if (minor === 48) close = false;
              } else if (token.length > 0) (connectionTokens ??= []).push(token);
            }
          }
          break;
      }
      p = lineEnd + 2;
    }
    if (transferEncoding && contentLength >= 0) {
      this.invalid('both Content-Length and Transfer-Encoding');
      return false;
    }

    if (status < 200) {
      if (status === 101) {
        this.invalid('unexpected 101 Switching Protocols');
        return false;
      }
      return true; // interim response: swallowed, the final one follows (state stays Head)
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
    this.sink.onResponseHead(status, reason, headers, framing, length, !close, connectionTokens, latin1);
    if (this.state === S.Done) this.sink.onResponseEnd();
    return true;
  }

  private readChunkSize(input: Buffer, pos: number): number {
    const carried = this.pending === null ? 0 : this.pending.length;
    const buf = this.take(input, pos);
    const eol = buf.indexOf(LF, carried > 0 ? carried - 1 : 0);
    if (eol < 0) {
      if (buf.length > MAX_CHUNK_LINE) return this.invalid('chunk size line too long');
      this.pending = Buffer.from(buf);
      return input.length;
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
    if (i < eol - 1) {
      // only chunk extensions may follow the size: optional whitespace then ';'
      let j = i;
      while (j < eol - 1 && (buf[j] === 32 || buf[j] === 9)) j++;
      if (buf[j] !== 59) return this.invalid('invalid chunk size');
    }
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
  private readTrailers(input: Buffer, pos: number): number {
    const carried = this.pending === null ? 0 : this.pending.length;
    const buf = this.take(input, pos);
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
      return input.length;
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
