// Owns the spelling rules for names in the config: listen hosts, route hosts, pool names, and
// the token that header and cookie names are made of.
// Config text, not the request path, so regexes are fine here.

import { isIP } from 'node:net';

const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;
const POOL_NAME = /^[A-Za-z0-9_.-]+$/;
// RFC 9110 token characters: what a header name is made of, and (RFC 6265) a cookie name.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** The token characters, as problems name them. */
export const TOKEN_CHARS = "letters, digits and !#$%&'*+-.^_`|~";

/** Lower-case host name or IP to listen on (IPv6 without brackets), or what is wrong. */
export function normaliseListenHost(raw: string): { host: string } | string {
  const v = raw.trim().toLowerCase();
  const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
  if (isIP(bare) !== 0) return { host: bare };
  if (bare.includes(':')) return `must be an IP address or host name without a port, got ${JSON.stringify(raw)}`;
  if (bare.length > 253 || !HOSTNAME.test(bare)) return `not a valid IP address or host name: ${JSON.stringify(raw)}`;
  return { host: bare };
}

/**
 * The route host as the router compares it with a request's Host header minus its port:
 * lower-case, IPv6 in brackets. Or what is wrong.
 */
export function normaliseRouteHost(raw: string): { host: string } | string {
  const v = raw.trim().toLowerCase();
  const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
  if (isIP(bare) === 6) return { host: `[${bare}]` };
  if (isIP(bare) === 4) return { host: bare };
  if (bare.includes(':')) return `must be a host name without a port, got ${JSON.stringify(raw)} (routes match any port)`;
  if (bare.includes('*')) return `wildcards are not supported, got ${JSON.stringify(raw)}; leave host out to match any host`;
  if (bare.length > 253 || !HOSTNAME.test(bare)) return `not a valid host name: ${JSON.stringify(raw)}`;
  return { host: bare };
}

export function isPoolName(name: string): boolean {
  return POOL_NAME.test(name);
}

/** A header name or cookie name: an RFC 9110 token. */
export function isToken(name: string): boolean {
  return TOKEN.test(name);
}
