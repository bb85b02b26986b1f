// The response head the client gets: hop-by-hop fields and framing dropped, everything else
// passed on byte for byte (obs-text included), in one writeStatus text.
import { describe, expect, it } from 'vitest';
import { READ_BUFFER } from '../../../src/upstream/read-buffer.js';
import { ResponseParser, type ResponseSink } from '../../../src/upstream/response-parser.js';
import { forwardedHead } from '../../../src/proxy/response-head.js';

/**
 * What writeStatus would be given for `head` (parsed from one read, or split into several);
 * `readBuffer`: the reads land in the worker's read buffer (whose lines move four bytes a step).
 */
function forwarded(head: string, split?: number, readBuffer = false): string {
  let text = '';
  const sink: ResponseSink = {
    onResponseHead: (h) => (text = Buffer.from(forwardedHead(h)).toString('latin1')),
    onResponseBody: () => {},
    onResponseEnd: () => {},
    onResponseInvalid: (reason) => (text = 'invalid: ' + reason),
  };
  const parser = new ResponseParser(sink);
  parser.expect(sink, false);
  const bytes = Buffer.from(head + '\r\n\r\n', 'latin1');
  const step = split ?? bytes.length;
  for (let i = 0; i < bytes.length; i += step) {
    const read = bytes.subarray(i, i + step);
    if (readBuffer) {
      read.copy(READ_BUFFER);
      parser.execute(READ_BUFFER, read.length);
    } else {
      parser.execute(Buffer.from(read));
    }
  }
  return text;
}

const cases: [string, string, string][] = [
  ['only framing and Date', 'HTTP/1.1 200 OK\r\nDate: Tue, 24 Nov 2026 03:00:00 GMT\r\nContent-Length: 0', '200 OK'],
  ['kept fields in order', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2', '200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2'],
  ['names as sent, values trimmed', 'HTTP/1.1 201 Created\r\nx-THING:   a b  \t\r\nContent-Length: 0', '201 Created\r\nx-THING:   a b'],
  [
    'hop-by-hop fields dropped',
    'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\nProxy-Connection: close\r\nX-Kept: yes\r\nContent-Length: 0',
    '200 OK\r\nX-Kept: yes',
  ],
  ['fields named by Connection dropped', 'HTTP/1.1 200 OK\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\nx-secret: 2\r\nX-Public: 3\r\nContent-Length: 0', '200 OK\r\nX-Public: 3'],
  ['fields named by a later Connection dropped', 'HTTP/1.1 200 OK\r\nX-Secret: 1\r\nX-Public: 3\r\nConnection: x-secret\r\nContent-Length: 0', '200 OK\r\nX-Public: 3'],
  ['chunked framing dropped', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: a/b', '200 OK\r\nContent-Type: a/b'],
  ['obs-text bytes kept', 'HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 0', '200 OK\r\nX-Name: caf\xe9'],
  ['HTTP/1.0 status line', 'HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nX-A: 1', '404 Not Found\r\nX-A: 1'],
  ['no reason phrase', 'HTTP/1.1 204\r\nX-A: 1', '204\r\nX-A: 1'],
  [
    'kept lines of every length around four and past 64 bytes, moved over dropped ones',
    'HTTP/1.1 200 OK\r\nDate: x\r\n' + Array.from({ length: 72 }, (_, k) => `X-${k}: ${'v'.repeat(k)}\r\nContent-Length: 0`).join('\r\n'),
    '200 OK\r\n' + Array.from({ length: 72 }, (_, k) => `X-${k}: ${'v'.repeat(k)}`).join('\r\n'),
  ],
  [
    // the parser marks the first 32 fields it read as framing; one past them must not mark another
    'framing fields past the 32nd',
    'HTTP/1.1 200 OK\r\n' + Array.from({ length: 40 }, (_, k) => `X-${k}: ${k}`).join('\r\n') + '\r\nContent-Length: 0\r\nConnection: close\r\nX-Last: 1',
    '200 OK\r\n' + Array.from({ length: 40 }, (_, k) => `X-${k}: ${k}`).join('\r\n') + '\r\nX-Last: 1',
  ],
  ['a field that only starts like a dropped one', 'HTTP/1.1 200 OK\r\nDates: 1\r\nProxy: 2\r\nContent-Lengths: 3\r\nContent-Length: 0', '200 OK\r\nDates: 1\r\nProxy: 2\r\nContent-Lengths: 3'],
];

describe('forwardedHead', () => {
  for (const [name, head, want] of cases) {
    for (const split of [undefined, 1, 7]) {
      it(`${name} (${split === undefined ? 'one read' : `reads of ${split}`})`, () => {
        expect(forwarded(head, split)).toBe(want);
      });
    }
    it(`${name} (one read, in the read buffer)`, () => {
      expect(forwarded(head, undefined, true)).toBe(want);
    });
  }

  it('a head after a 100 Continue in the same read', () => {
    expect(forwarded('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1')).toBe('200 OK\r\nX-A: 1');
  });
});
