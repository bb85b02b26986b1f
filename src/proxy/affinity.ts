// Owns what ties a request to a backend besides the balancer's own choice: the consistent-hash
// key read from the request (path, client address, a header, a cookie or a query parameter) and
// the sticky-session cookie. Read synchronously inside the uWS handler (the request object is
// only valid there); no regex, and no work at all for pools that use neither.

import { hashString } from '../balancer/hash.js';
import type { HashKey } from '../config/types.js';
import { trimOws } from '../http-tokens.js';
import type { Downstream } from './downstream.js';

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue(header: string, name: string): string | null {
  let from = 0;
  while (from < header.length) {
    const at = header.indexOf(name, from);
    if (at < 0) return null;
    const end = at + name.length;
    // a whole name: at the start or after "; " / ";", and followed by '='
    let before = at - 1;
    while (before >= 0 && header.charCodeAt(before) === 32) before--;
    if ((before < 0 || header.charCodeAt(before) === 59) && header.charCodeAt(end) === 61) {
      const semi = header.indexOf(';', end + 1);
      let value = trimOws(header.slice(end + 1, semi < 0 ? header.length : semi));
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) value = value.slice(1, -1);
      return value;
    }
    from = end;
  }
  return null;
}

/** The 32-bit hash of the request's key, or -1 when the request has no such key. */
export function requestHash(req: Pick<Downstream, 'header' | 'queryParameter'>, key: HashKey, path: string, remote: string): number {
  let value: string | null | undefined;
  switch (key.kind) {
    case 'path':
      value = path;
      break;
    case 'ip':
      value = remote;
      break;
    case 'header':
      value = req.header(key.name);
      break;
    case 'cookie':
      value = cookieValue(req.header('cookie'), key.name);
      break;
    case 'query':
      value = req.queryParameter(key.name);
      break;
  }
  return value === null || value === undefined || value.length === 0 ? -1 : hashString(value);
}

/** An opaque, stable sticky id for a backend of a pool: not its address, same in every worker. */
export function stickyId(pool: string, url: string): string {
  return (hashString(pool + ' ' + url) >>> 0).toString(36) + (hashString(url + ' ' + pool) >>> 0).toString(36);
}
