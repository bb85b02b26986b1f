// Owns the `admin` section: where the admin server (metrics, status, actions, dashboard) listens
// and the token it asks for. Absent: no admin server. A non-loopback address without a token is a
// problem: anyone who reaches the port could drain every backend.

import { isIP } from 'node:net';
import { hostsMayOverlap, listenerAddress } from './listeners.js';
import { normaliseListenHost } from './names.js';
import type { Config } from './types.js';
import type { Field, Walk } from './walk.js';

export const ADMIN_KEYS = ['host', 'port', 'token'] as const;
export const ADMIN_DEFAULT_HOST = '127.0.0.1';
/** Shorter tokens can be guessed; 16 characters of a random string is about 96 bits. */
export const MIN_TOKEN_LENGTH = 16;

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  // IPv4-mapped IPv6 (::ffff:127.0.0.1)
  return host.startsWith('::ffff:127.');
}

/** `f`: the admin section (undefined when absent); `listen`: the validated listeners. */
export function validateAdmin(walk: Walk, f: Field | undefined, listen: Config['listen']): Config['admin'] {
  if (f === undefined) return null;
  if (walk.isNull(f)) {
    walk.report(f.at, `${f.path}.port`, 'is required: the port of the admin server (leave admin out for no admin server)');
    return null;
  }
  const e = walk.map(f, ADMIN_KEYS);
  if (e === undefined) return null;
  let host = ADMIN_DEFAULT_HOST;
  const hostField = e.get('host');
  let hostOk = true;
  if (hostField !== undefined) {
    const raw = walk.string(hostField, 'an IP address or host name');
    const r = raw === undefined ? undefined : normaliseListenHost(raw);
    if (typeof r === 'string') walk.report(hostField.at, hostField.path, r);
    if (typeof r === 'object') host = r.host;
    else hostOk = false;
  }
  const portField = e.get('port');
  let port: number | undefined;
  if (portField === undefined) walk.report(f.at, `${f.path}.port`, 'is required: the port of the admin server');
  else port = walk.integer(portField, 1, 65535);
  const tokenField = e.get('token');
  const token = tokenField === undefined ? null : validateToken(walk, tokenField);
  const clash = listen.find((l) => l.port === port && hostsMayOverlap(host, l.host));
  if (portField !== undefined && port !== undefined && hostOk && clash !== undefined) {
    const which = listen.length === 1 ? 'listen.port' : `the port of listener ${listenerAddress(clash)}`;
    walk.report(portField.at, portField.path, `must differ from ${which} (${clash.port}): admin (${host}) and listen (${clash.host}) may share an address`);
  }
  if (hostOk && tokenField === undefined && !isLoopback(host)) {
    walk.report(hostField?.at ?? f.at, `${f.path}.token`, `is required when admin.host is not a loopback address (got ${host}): set a token of at least ${MIN_TOKEN_LENGTH} characters, or bind admin to 127.0.0.1`);
  }
  if (port === undefined || token === undefined) return null;
  return { host, port, token };
}

/** A string of at least MIN_TOKEN_LENGTH visible ASCII characters (it travels in a header). */
function validateToken(walk: Walk, f: Field): string | undefined {
  const v = walk.string(f, `a string of at least ${MIN_TOKEN_LENGTH} characters`);
  if (v === undefined) return undefined;
  if (v.length < MIN_TOKEN_LENGTH) walk.report(f.at, f.path, `must be at least ${MIN_TOKEN_LENGTH} characters long, got ${v.length}`);
  else if (/[^\x21-\x7e]/.test(v)) walk.report(f.at, f.path, 'may only use visible ASCII characters (no blanks): it is sent in an Authorization header');
  else return v;
  return undefined;
}
