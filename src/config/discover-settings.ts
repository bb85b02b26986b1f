// Owns a pool's `discover` section (backends found by DNS: A and AAAA records of a name with a
// port, or SRV records) and the top-level `resolver` (which DNS server the primary asks). The
// lookups themselves are src/health/discovery.ts's.

import { isIP } from 'node:net';
import type { DiscoverConfig, ResolverConfig } from './types.js';
import type { Field, Walk } from './walk.js';

export const DISCOVER_KEYS = ['dns', 'srv', 'port', 'every', 'weight'] as const;
export const DISCOVER_DEFAULT_EVERY_MS = 5000;
const MAX_WEIGHT = 1000;

/** A DNS name: labels of letters, digits, '-' and '_' (SRV's _service._proto), dots between, an optional final dot. */
function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 254) return false;
  const labels = (name.endsWith('.') ? name.slice(0, -1) : name).split('.');
  return labels.every((l) => l.length >= 1 && l.length <= 63 && /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(l));
}

function dnsName(walk: Walk, f: Field): string | undefined {
  const v = walk.string(f, 'a DNS name');
  if (v === undefined) return undefined;
  if (!isDnsName(v)) {
    walk.report(f.at, f.path, `not a DNS name: ${JSON.stringify(v)} (labels of letters, digits, "-" and "_", separated by dots)`);
    return undefined;
  }
  return v.toLowerCase();
}

/** `discover: { dns: NAME, port: N, every: 5s }` or `discover: { srv: NAME, every: 5s }`; undefined after reporting. */
export function validateDiscover(walk: Walk, f: Field): DiscoverConfig | undefined {
  const e = walk.map(f, DISCOVER_KEYS);
  if (e === undefined) return undefined;
  const dnsField = e.get('dns');
  const srvField = e.get('srv');
  const portField = e.get('port');
  let ok = true;
  if ((dnsField === undefined) === (srvField === undefined)) {
    walk.report(f.at, f.path, 'needs exactly one of dns (A and AAAA records, with port) or srv (SRV records, which carry the port)');
    return undefined;
  }
  const name = dnsName(walk, (dnsField ?? srvField)!);
  let port = 0;
  if (dnsField !== undefined) {
    if (portField === undefined) {
      walk.report(f.at, `${f.path}.port`, 'is required with dns: the port of the backends');
      ok = false;
    } else port = walk.integer(portField, 1, 65535) ?? 0;
  } else if (portField !== undefined) {
    walk.report(portField.at, portField.path, 'goes with dns only: SRV records carry their own port');
    ok = false;
  }
  const everyField = e.get('every');
  const everyMs = everyField === undefined ? DISCOVER_DEFAULT_EVERY_MS : walk.duration(everyField);
  const weightField = e.get('weight');
  const weight = weightField === undefined ? 1 : walk.integer(weightField, 1, MAX_WEIGHT);
  if (!ok || name === undefined || everyMs === undefined || weight === undefined || (dnsField !== undefined && port === 0)) return undefined;
  return { kind: dnsField !== undefined ? 'dns' : 'srv', name, port, everyMs, weight };
}

/** `resolver: HOST[:PORT]` (IPv6 in brackets when a port follows); absent: the system's servers. */
export function validateResolver(walk: Walk, f: Field | undefined): ResolverConfig | null {
  if (f === undefined || walk.isNull(f)) return null;
  const raw = walk.string(f, 'an IP address with an optional port, like 127.0.0.1:5353 or [::1]:53');
  if (raw === undefined) return null;
  let host = raw;
  let port = 53;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(raw) ?? (isIP(raw) === 6 ? null : /^([^:]+)(?::(\d+))?$/.exec(raw));
  if (m !== null) {
    host = m[1]!;
    if (m[2] !== undefined) port = Number(m[2]);
  }
  if (isIP(host) === 0) {
    walk.report(f.at, f.path, `expected an IP address with an optional port, like 127.0.0.1:5353 or [::1]:53, got ${JSON.stringify(raw)}`);
    return null;
  }
  if (port < 1 || port > 65535) {
    walk.report(f.at, f.path, `port must be from 1 to 65535, got ${port}`);
    return null;
  }
  return { host, port };
}
