// Owns turning a client's address into the text of X-Forwarded-For (and the `ip` hash key).
// uWS hands the address out only as a fresh ArrayBuffer; its text form costs a second one plus a
// Buffer and a string per request (about 1 µs more, measured). The binary form is read instead,
// and IPv4 addresses (plain, or IPv4-mapped on an IPv6 listener) are formatted once and kept in a
// small table keyed by the 32-bit address. IPv4-mapped addresses are written as dotted quads, as
// an operator reading X-Forwarded-For expects; other IPv6 addresses in RFC 5952 form.

import type { HttpResponse } from 'uWebSockets.js';

/** Formatted IPv4 addresses kept; the table is cleared when it grows past this. */
const MAX_CACHED = 4096;

const ipv4Text = new Map<number, string>();

function formatIpv4(a: Uint8Array, at: number): string {
  const key = ((a[at]! << 24) | (a[at + 1]! << 16) | (a[at + 2]! << 8) | a[at + 3]!) >>> 0;
  let text = ipv4Text.get(key);
  if (text === undefined) {
    text = a[at] + '.' + a[at + 1] + '.' + a[at + 2] + '.' + a[at + 3];
    if (ipv4Text.size >= MAX_CACHED) ipv4Text.clear();
    ipv4Text.set(key, text);
  }
  return text;
}

function isIpv4Mapped(a: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 255 && a[11] === 255;
}

/** RFC 5952: lowercase hex groups without leading zeros, the longest run (>= 2) of zero groups as "::". */
export function formatIpv6(a: Uint8Array): string {
  let bestAt = -1;
  let bestLen = 0;
  for (let g = 0; g < 8; ) {
    if (a[2 * g] === 0 && a[2 * g + 1] === 0) {
      let end = g;
      while (end < 8 && a[2 * end] === 0 && a[2 * end + 1] === 0) end++;
      if (end - g > bestLen) {
        bestAt = g;
        bestLen = end - g;
      }
      g = end;
    } else {
      g++;
    }
  }
  if (bestLen < 2) bestAt = -1;
  let out = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestAt) {
      out += g === 0 ? '::' : ':';
      g += bestLen - 1;
      continue;
    }
    out += ((a[2 * g]! << 8) | a[2 * g + 1]!).toString(16);
    if (g < 7) out += ':';
  }
  return out;
}

/** The address bytes as text (4 bytes: IPv4, 16 bytes: IPv6); '' for anything else. */
export function addressText(a: Uint8Array): string {
  if (a.length === 4) return formatIpv4(a, 0);
  if (a.length !== 16) return '';
  return isIpv4Mapped(a) ? formatIpv4(a, 12) : formatIpv6(a);
}

/** The client's address of `res`, as text. Call only inside a uWS handler for `res`. */
export function remoteAddress(res: HttpResponse): string {
  return addressText(new Uint8Array(res.getRemoteAddress()));
}
