// Client address text for X-Forwarded-For: IPv4, IPv4-mapped IPv6 as a dotted quad, and IPv6 in
// RFC 5952 form (checked against Node's own formatting where Node agrees with the RFC).
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { addressText } from '../../../src/front/remote-address.js';

function v6Bytes(text: string): Uint8Array {
  const sock = new net.SocketAddress({ address: text, family: 'ipv6' });
  // expand with the URL parser's canonical form, then read the groups
  const full = new URL(`http://[${sock.address}]/`).hostname.slice(1, -1);
  const [head, tail] = full.includes('::') ? full.split('::') : [full, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 255;
  });
  return out;
}

describe('addressText', () => {
  it.each([
    [[127, 0, 0, 1], '127.0.0.1'],
    [[10, 20, 30, 40], '10.20.30.40'],
    [[255, 255, 255, 255], '255.255.255.255'],
    [[0, 0, 0, 0], '0.0.0.0'],
  ])('IPv4 %j is %s (and the same again from the table)', (bytes, text) => {
    expect(addressText(Uint8Array.from(bytes))).toBe(text);
    expect(addressText(Uint8Array.from(bytes))).toBe(text);
  });

  it('an IPv4-mapped IPv6 address is written as the IPv4 address', () => {
    expect(addressText(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 127, 0, 0, 1]))).toBe('127.0.0.1');
    expect(addressText(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 192, 0, 2, 33]))).toBe('192.0.2.33');
  });

  it.each([
    ['::1', '::1'],
    ['::', '::'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not shortened
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['1::', '1::'],
    ['fe80::abcd:ef01', 'fe80::abcd:ef01'],
  ])('IPv6 %s is %s', (input, text) => {
    expect(addressText(v6Bytes(input))).toBe(text);
  });

  it('any other length is empty', () => {
    expect(addressText(new Uint8Array(0))).toBe('');
    expect(addressText(new Uint8Array(5))).toBe('');
  });
});
