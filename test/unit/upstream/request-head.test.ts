// The upstream request head built from a client's fields: which fields are read, dropped or
// forwarded, checked against a plain reference (a set of names) for the dropped names and for
// names that differ from one of them in a single byte, or share its length and first byte.
import { describe, expect, it } from 'vitest';
import { buildRequestHead, FramingProblem, newClientHead, type ClientHead, type RequestFields } from '../../../src/upstream/request-head.js';

const LISTENER = 'x-forwarded-proto: http\r\nx-forwarded-port: 8080\r\n';

/** Every field the builder drops outright (hop-by-hop, or written by corelb itself). */
const DROPPED = ['te', 'expect', 'trailer', 'upgrade', 'connection', 'keep-alive', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'transfer-encoding'];
/** Read by the builder and written again in its own place. */
const REWRITTEN = ['content-length', 'x-forwarded-for'];

function fields(list: [string, string][]): RequestFields {
  return {
    query: () => undefined,
    listenerFields: () => LISTENER,
    // as uWS does: a new string per name and value, never an interned literal
    forEachField: (visit) => list.forEach(([k, v]) => visit((' ' + k).slice(1), (' ' + v).slice(1))),
  };
}

function build(list: [string, string][], remote = '10.0.0.1'): ClientHead {
  const head = newClientHead();
  buildRequestHead(fields(list), 'GET', '/p', remote, () => 'id-1', head);
  return head;
}

/** The lines between the request line and the fields corelb adds. */
function forwarded(head: string): string[] {
  const lines = head.split('\r\n').slice(1);
  return lines.slice(0, lines.findIndex((l) => l.startsWith('x-request-id: ') || l.startsWith('x-forwarded-for: ') || l === ''));
}

/** Names near each dropped or read one: one byte changed, one byte more or less, the same first byte. */
function nearMisses(name: string): string[] {
  const out = new Set<string>();
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    out.add(name.slice(0, i) + String.fromCharCode(c === 122 ? 97 : c + 1) + name.slice(i + 1));
  }
  out.add(name + 'x');
  out.add(name.slice(0, -1));
  out.add(name[0] + 'z'.repeat(name.length - 1));
  out.add('z' + name.slice(1));
  for (const n of [...DROPPED, ...REWRITTEN, 'host', 'x-request-id']) out.delete(n);
  return [...out].filter((n) => n.length > 0 && !n.startsWith('proxy-'));
}

describe('buildRequestHead', () => {
  it('drops the hop-by-hop fields and the ones corelb writes, and forwards every near miss of their names', () => {
    for (const name of DROPPED) {
      const misses = nearMisses(name);
      const list: [string, string][] = [[name, 'v'], ...misses.map((n): [string, string] => [n, 'w'])];
      const head = build(list);
      expect(forwarded(head.head), name).toEqual(misses.map((n) => `${n}: w`));
    }
  });

  it('forwards the near misses of the fields it reads', () => {
    for (const name of ['host', 'x-request-id', ...REWRITTEN]) {
      const misses = nearMisses(name);
      const head = build(misses.map((n) => [n, 'w']));
      expect(forwarded(head.head), name).toEqual(misses.map((n) => `${n}: w`));
      expect(head.host).toBe('');
      expect(head.requestId).toBe('id-1');
      expect(head.contentLength).toBe(-1);
      expect(head.forwardedFor).toBe('');
    }
  });

  it('drops proxy-* fields, and forwards a name that only starts like one', () => {
    const head = build([['proxy-authorization', 'a'], ['proxy-connection', 'b'], ['proxy-x', 'c'], ['proxy', 'd'], ['proxy_x', 'e'], ['proxy-', 'f'], ['xproxy-a', 'g']]);
    expect(forwarded(head.head)).toEqual(['proxy: d', 'proxy_x: e', 'proxy-: f', 'xproxy-a: g']);
  });

  it('reads Host, X-Request-Id, X-Forwarded-For, Content-Length and Connection, and forwards the first two', () => {
    const head = build([['host', 'a.example'], ['x-request-id', 'r-9'], ['x-forwarded-for', '1.1.1.1'], ['x-forwarded-for', '2.2.2.2'], ['content-length', '12'], ['connection', 'close'], ['accept', '*/*']]);
    expect(head.host).toBe('a.example');
    expect(head.requestId).toBe('r-9');
    expect(head.contentLength).toBe(12);
    expect(head.closes).toBe(true);
    expect(head.framing).toBe(FramingProblem.None);
    expect(head.head).toBe(
      'GET /p HTTP/1.1\r\nhost: a.example\r\nx-request-id: r-9\r\naccept: */*\r\n' +
        'x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.1\r\n' +
        LISTENER +
        'x-forwarded-host: a.example\r\ncontent-length: 12\r\n\r\n',
    );
  });

  it('drops the fields Connection names, wherever they stand', () => {
    const head = build([['x-a', '1'], ['connection', 'x-a, X-B'], ['x-b', '2'], ['x-c', '3']]);
    expect(forwarded(head.head)).toEqual(['x-c: 3']);
  });

  it('refuses two framings, a coding other than chunked and a length that is not digits', () => {
    expect(build([['content-length', '3'], ['transfer-encoding', 'chunked']]).framing).toBe(FramingProblem.LengthAndCoding);
    expect(build([['transfer-encoding', 'gzip']]).framing).toBe(FramingProblem.UnknownCoding);
    expect(build([['transfer-encoding', 'chunked'], ['transfer-encoding', 'chunked']]).framing).toBe(FramingProblem.RepeatedCoding);
    expect(build([['content-length', '1x']]).framing).toBe(FramingProblem.BadLength);
    expect(build([['content-length', '3'], ['content-length', '4']]).framing).toBe(FramingProblem.BadLength);
    const chunked = build([['transfer-encoding', 'Chunked']]);
    expect(chunked.framing).toBe(FramingProblem.None);
    expect(chunked.chunked).toBe(true);
    expect(chunked.head.endsWith('transfer-encoding: chunked\r\n\r\n')).toBe(true);
  });
});
