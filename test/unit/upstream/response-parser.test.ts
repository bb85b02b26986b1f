// The strict response parser, fed whole and byte by byte: every framing, and every way a
// backend can be wrong.
import { describe, expect, it } from 'vitest';
import { READ_BUFFER } from '../../../src/upstream/read-buffer.js';
import { Framing, ResponseParser, type ResponseHead, type ResponseSink } from '../../../src/upstream/response-parser.js';

/** The head's fields as [name, value, ...] strings (latin-1). */
function headerList(head: ResponseHead): string[] {
  const out: string[] = [];
  const f = head.fields;
  for (let i = 0; i < head.count; i++) {
    out.push(head.bytes.toString('latin1', f[4 * i]!, f[4 * i + 1]!), head.bytes.toString('latin1', f[4 * i + 2]!, f[4 * i + 3]!));
  }
  return out;
}

interface Parsed {
  heads: { status: number; reason: string; headers: string[]; framing: Framing; length: number; keepAlive: boolean }[];
  body: string;
  ended: number;
  invalid: string | null;
  extra: number;
}

/**
 * `readBuffer`: each read lands in the worker's shared read buffer, as a plain backend socket's
 * do (the parser scans it four bytes at a time), with stale bytes after it.
 */
function parse(input: string, opts: { head?: boolean; split?: number; eof?: boolean; readBuffer?: boolean } = {}): Parsed {
  const out: Parsed = { heads: [], body: '', ended: 0, invalid: null, extra: 0 };
  const sink: ResponseSink = {
    onResponseHead: (h) =>
      out.heads.push({
        status: h.status,
        reason: h.bytes.toString('latin1', Math.min(h.start + 13, h.statusEnd), h.statusEnd),
        headers: headerList(h),
        framing: h.framing,
        length: h.length,
        keepAlive: h.keepAlive,
      }),
    onResponseBody: (chunk) => (out.body += Buffer.from(chunk).toString('latin1')),
    onResponseEnd: () => out.ended++,
    onResponseInvalid: (reason) => (out.invalid = reason),
  };
  const parser = new ResponseParser(sink);
  parser.expect(sink, opts.head ?? false);
  const bytes = Buffer.from(input, 'latin1');
  const step = opts.split ?? bytes.length;
  for (let i = 0; i < bytes.length; i += step) {
    const read = bytes.subarray(i, i + step);
    if (opts.readBuffer === true) {
      READ_BUFFER.fill(0x41, read.length, read.length + 64); // an older read's bytes: never to be parsed
      read.copy(READ_BUFFER);
      out.extra += parser.execute(READ_BUFFER, read.length);
    } else {
      out.extra += parser.execute(Buffer.from(read));
    }
  }
  if (opts.eof) parser.finish();
  return out;
}

const valid: [string, string, Partial<Parsed> & { status: number; framing: Framing }, { head?: boolean; eof?: boolean }?][] = [
  ['content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', { status: 200, framing: Framing.Length, body: 'hello' }],
  ['zero length', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { status: 200, framing: Framing.None, body: '' }],
  ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'hello world' }],
  ['chunked, extensions and trailers', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'hello0123456789' }],
  ['upper-case chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n', { status: 200, framing: Framing.Chunked, body: '0123456789' }],
  ['close-delimited', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', { status: 200, framing: Framing.Close, body: 'until the end', keepAlive: false }, { eof: true }],
  ['100 continue first', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok', { status: 201, framing: Framing.Length, body: 'ok' }],
  ['103 early hints first', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', { status: 200, framing: Framing.Length, body: 'x' }],
  ['HEAD ignores content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', { status: 200, framing: Framing.None, body: '', length: 1000 } as never, { head: true }],
  ['204 has no body', 'HTTP/1.1 204 No Content\r\n\r\n', { status: 204, framing: Framing.None, body: '' }],
  ['304 has no body', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n', { status: 304, framing: Framing.None, body: '' }],
  ['empty reason', 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', { status: 200, framing: Framing.None }],
  ['connection close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', { status: 200, framing: Framing.None, keepAlive: false }],
  ['HTTP/1.0 is not kept alive', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', { status: 200, framing: Framing.None, keepAlive: false }],
  ['same content-length twice', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok', { status: 200, framing: Framing.Length, body: 'ok' }],
  // chunk lines as RFC 9112 §7.1.1 allows them
  ['chunk extension, token value', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'abc' }],
  ['chunk extension without a value', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;flag\r\nabc\r\n0;last\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'abc' }],
  ['chunk extensions, quoted value with ; and escapes', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a="x;\\"y";b=2\r\nabc\r\n0\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'abc' }],
  ['chunk extension with BWS around ; and =', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 ; a = b\r\nabc\r\n0\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'abc' }],
  // interim responses: any number of them, any final class
  ['100 continue then 404', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope', { status: 404, framing: Framing.Length, body: 'nope' }],
  ['103 early hints then a chunked 200', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'hello' }],
  ['102, 103 and 100 then 500', 'HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nx', { status: 500, framing: Framing.Length, body: 'x' }],
  ['100 continue then 204', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n', { status: 204, framing: Framing.None, body: '' }],
  // the read buffer compares these names and values four bytes at a time: case, and near misses
  ['upper-case Connection: Keep-Alive keeps HTTP/1.0 alive', 'HTTP/1.0 200 OK\r\nCONNECTION: Keep-ALIVE\r\nCONTENT-LENGTH: 2\r\n\r\nok', { status: 200, framing: Framing.Length, body: 'ok', keepAlive: true }],
  ['near misses of Content-Length and keep-alive', 'HTTP/1.0 200 OK\r\nContent-Lengtx: 9\r\nContent-Lemgth: 9\r\nConnection: keep-alivf\r\nContent-Length: 2\r\n\r\nok', { status: 200, framing: Framing.Length, body: 'ok', keepAlive: false }],
  ['HTAB around a Content-Length value', 'HTTP/1.1 200 OK\r\nContent-Length:\t42\t\r\n\r\n' + 'x'.repeat(42), { status: 200, framing: Framing.Length, body: 'x'.repeat(42) }],
  ['HTAB around Transfer-Encoding: chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding:\tchunked\t\r\n\r\n2\r\nok\r\n0\r\n\r\n', { status: 200, framing: Framing.Chunked, body: 'ok' }],
];

const ways: { split?: number; readBuffer?: boolean }[] = [{}, { split: 1 }, { split: 3 }, { split: 7 }, { readBuffer: true }, { split: 7, readBuffer: true }];
const wayName = (w: { split?: number; readBuffer?: boolean }): string =>
  (w.split === undefined ? 'whole' : `split every ${w.split}`) + (w.readBuffer === true ? ', in the read buffer' : '');

describe('response parser: valid responses', () => {
  for (const [name, input, want, opts] of valid) {
    for (const way of ways) {
      it(`${name} (${wayName(way)})`, () => {
        const r = parse(input, { ...opts, ...way });
        expect(r.invalid).toBeNull();
        expect(r.heads).toHaveLength(1);
        expect(r.heads[0]!.status).toBe(want.status);
        expect(r.heads[0]!.framing).toBe(want.framing);
        if (want.body !== undefined) expect(r.body).toBe(want.body);
        if (want.keepAlive !== undefined) expect(r.heads[0]!.keepAlive).toBe(want.keepAlive);
        if ((want as { length?: number }).length !== undefined) expect(r.heads[0]!.length).toBe((want as { length?: number }).length);
        expect(r.ended).toBe(1);
        expect(r.extra).toBe(0);
      });
    }
  }

  it('keeps header names as sent and values trimmed', () => {
    const r = parse('HTTP/1.1 200 OK\r\nX-Thing:   a b  \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n');
    expect(r.heads[0]!.headers).toEqual(['X-Thing', 'a b', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '0']);
  });

  it('reads the reason phrase', () => {
    expect(parse('HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n').heads[0]!.reason).toBe('Not Found Here');
    expect(parse('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').heads[0]!.reason).toBe('');
  });

  it('reads only the given length of a reused read buffer', () => {
    // the bytes after `len` are an older read's: a blank line there must not end the head
    const out: string[] = [];
    const sink: ResponseSink = {
      onResponseHead: (h) => out.push('head ' + h.status),
      onResponseBody: (chunk) => out.push('body ' + Buffer.from(chunk).toString('latin1')),
      onResponseEnd: () => out.push('end'),
      onResponseInvalid: (reason) => out.push('invalid ' + reason),
    };
    const p = new ResponseParser(sink);
    p.expect(sink, false);
    const buffer = Buffer.alloc(256, 0x20);
    const first = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1';
    buffer.write(first + '\r\n\r\nstale', 0, 'latin1');
    expect(p.execute(buffer, first.length)).toBe(0);
    expect(out).toEqual([]);
    const second = '\r\n\r\nhel';
    buffer.write(second + 'XXXXXXXX', 0, 'latin1');
    expect(p.execute(buffer, second.length)).toBe(0);
    buffer.write('lo' + 'YYYY', 0, 'latin1');
    expect(p.execute(buffer, 2)).toBe(0);
    expect(out).toEqual(['head 200', 'body hel', 'body lo', 'end']);
  });

  it('reports bytes after a complete response', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA');
    expect(r.body).toBe('ok');
    expect(r.extra).toBe(5);
  });

  it('a truncated body is not complete at EOF', () => {
    const sink: ResponseSink = { onResponseHead: () => {}, onResponseBody: () => {}, onResponseEnd: () => {}, onResponseInvalid: () => {} };
    const p = new ResponseParser(sink);
    p.expect(sink, false);
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    expect(p.finish()).toBe('truncated');
    p.expect(sink, false);
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'));
    expect(p.finish()).toBe('truncated');
  });
});

const invalid: [string, string][] = [
  ['both content-length and transfer-encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['non-numeric content-length', 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n'],
  ['negative content-length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
  ['conflicting content-lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n'],
  ['content-length with a list', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n'],
  ['garbage status line', 'HELLO THERE\r\n\r\n'],
  ['short garbage status line', 'garbage\r\n\r\n'],
  ['status line without a status', 'HTTP/1.1\r\n\r\n'],
  ['status line with a short status', 'HTTP/1.1 20\r\n\r\n'],
  ['HTTP/2 status line', 'HTTP/2 200 OK\r\n\r\n'],
  ['status code with letters', 'HTTP/1.1 2x0 OK\r\n\r\n'],
  ['status code out of range', 'HTTP/1.1 600 Nope\r\n\r\n'],
  ['header without colon', 'HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n'],
  ['space before colon', 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n'],
  ['obsolete line folding', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n'],
  ['control character in value', 'HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n'],
  ['bare LF in a value', 'HTTP/1.1 200 OK\r\nX-A: a\nX-Injected: 1\r\nContent-Length: 0\r\n\r\n'],
  ['bare CR in a value', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n'],
  ['bare LF in the reason', 'HTTP/1.1 200 OK\nX-Injected: 1\r\nContent-Length: 0\r\n\r\n'],
  ['status code with four digits', 'HTTP/1.1 2000 OK\r\n\r\n'],
  ['lower-case protocol name', 'http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['unsupported transfer-encoding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n'],
  ['invalid chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
  ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n'],
  ['huge chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n'],
  ['101 without upgrade', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
  // chunk lines outside RFC 9112 §7.1.1
  ['chunk size with a bare ;', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;\r\nabc\r\n0\r\n\r\n'],
  ['chunk extension with = and no value', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\r\nabc\r\n0\r\n\r\n'],
  ['chunk extension name not a token', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a(b)\r\nabc\r\n0\r\n\r\n'],
  ['chunk extension with an unterminated quote', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a="x\r\nabc\r\n0\r\n\r\n'],
  ['chunk size with leading whitespace', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n'],
  ['chunk size with trailing whitespace', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n'],
  ['chunk size with 0x', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n'],
  ['chunk size with a sign', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n'],
  ['chunk size line ended by a bare LF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n'],
  ['chunk data not followed by CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n'],
  ['chunk data followed by a bare LF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n'],
  ['a bare CR inside a chunk line', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r;a\r\nabc\r\n0\r\n\r\n'],
  ['two transfer-encoding chunked lines then bad', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n'],
];

describe('response parser: invalid responses', () => {
  for (const [name, input] of invalid) {
    for (const way of ways) {
      it(`${name} (${wayName(way)})`, () => {
        const r = parse(input, way);
        expect(r.invalid).not.toBeNull();
        expect(r.ended).toBe(0);
      });
    }
  }

  it('every byte value at every place in a value, in the read buffer and out of it', () => {
    // the read buffer is scanned four bytes at a time: a control character in any lane is found
    for (const readBuffer of [false, true]) {
      for (let c = 0; c < 256; c++) {
        for (let at = 0; at < 9; at++) {
          const value = 'abcdefghijklmnop'.slice(0, at) + String.fromCharCode(c) + 'qrstuvwxyz';
          const r = parse(`HTTP/1.1 200 OK\r\nX-A: ${value}\r\nContent-Length: 0\r\n\r\n`, { readBuffer });
          const refused = (c < 32 && c !== 9) || c === 127;
          expect(r.invalid !== null, `byte ${c} at ${at}, read buffer: ${readBuffer}`).toBe(refused);
          const want = at === 0 && (c === 9 || c === 32) ? value.slice(1) : value; // leading whitespace is not the value's
          if (!refused) expect(r.heads[0]!.headers.slice(0, 2)).toEqual(['X-A', want]);
        }
      }
    }
  });

  it('a head over 64 KiB is invalid', () => {
    const r = parse('HTTP/1.1 200 OK\r\nX-Big: ' + 'a'.repeat(70_000) + '\r\n\r\n', { split: 4096 });
    expect(r.invalid).toMatch(/64 KiB/);
  });
});
