// The response head the client gets: hop-by-hop fields and framing dropped, everything else
// passed on byte for byte (obs-text included), in one writeStatus text.
import { describe, expect, it } from 'vitest';
import { ResponseParser, type ResponseSink } from '../../../src/upstream/response-parser.js';
import { forwardedHead } from '../../../src/proxy/response-head.js';

/** What writeStatus would be given for `head` (parsed from one read, or split into several). */
function forwarded(head: string, split?: number): string {
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
  for (let i = 0; i < bytes.length; i += step) parser.execute(Buffer.from(bytes.subarray(i, i + step)));
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
  ['a field that only starts like a dropped one', 'HTTP/1.1 200 OK\r\nDates: 1\r\nProxy: 2\r\nContent-Lengths: 3\r\nContent-Length: 0', '200 OK\r\nDates: 1\r\nProxy: 2\r\nContent-Lengths: 3'],
];

describe('forwardedHead', () => {
  for (const [name, head, want] of cases) {
    for (const split of [undefined, 1, 7]) {
      it(`${name} (${split === undefined ? 'one read' : `reads of ${split}`})`, () => {
        expect(forwarded(head, split)).toBe(want);
      });
    }
  }

  it('a head after a 100 Continue in the same read', () => {
    expect(forwarded('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1')).toBe('200 OK\r\nX-A: 1');
  });
});
