// Tests for src/config/discover-settings.ts through parseConfig: a pool's `discover` (dns with
// port, or srv) goes instead of backends and is normalised; the top-level `resolver` takes an IP
// with an optional port; every mistake is reported at its field, line and column.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCommand, formatProblem, parseConfig } from '../../../src/config/index.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

function parse(text: string) {
  return parseConfig(text, 'd.yaml', { availableParallelism: 2 });
}

function problems(text: string): string[] {
  const r = parse(text);
  return r.ok ? [] : r.problems.map(formatProblem);
}

describe('discover and resolver', () => {
  it('reads dns with port and srv, with their defaults; the validated pool has no backends yet', () => {
    const r = parse(lines('resolver: 127.0.0.1:5353', 'pools:', '  a: { discover: { dns: API.Example.svc, port: 8080 } }', '  b: { discover: { srv: _http._tcp.api.example, every: 1s, weight: 3 } }', 'routes: [{ pool: a }]'));
    if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
    expect(r.config.resolver).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(r.config.pools.map((p) => [p.backends, p.discover])).toEqual([
      [[], { kind: 'dns', name: 'api.example.svc', port: 8080, everyMs: 5000, weight: 1 }],
      [[], { kind: 'srv', name: '_http._tcp.api.example', port: 0, everyMs: 1000, weight: 3 }],
    ]);
  });

  it('check says which pools are found by DNS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corelb-discover-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, lines('workers: 1', 'pools:', '  a: { discover: { dns: a.example, port: 80 } }', '  b: { backends: [http://b:1] }', 'routes: [{ pool: b }]'));
    expect(checkCommand(file)).toEqual({ exitCode: 0, output: `ok: ${file} (2 pools, 1 backend + 1 pool found by DNS, 1 worker)\n` });
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['[::1]:53', { host: '::1', port: 53 }],
    ['::1', { host: '::1', port: 53 }],
    ['10.0.0.2', { host: '10.0.0.2', port: 53 }],
  ])('resolver %s', (raw, want) => {
    const r = parse(lines(`resolver: "${raw}"`, 'pools: { web: { backends: [http://a:1] } }'));
    expect(r.ok && r.config.resolver).toEqual(want);
  });

  it('reports each mistake at its field', () => {
    expect(problems(lines('pools:', '  web:', '    backends: [http://a:1]', '    discover: { dns: a.example, port: 80 }'))).toEqual([
      'd.yaml:4:5 pools.web.discover: goes instead of backends, not with them: a pool lists its backends or finds them by DNS',
    ]);
    expect(problems(lines('pools:', '  web: { discover: { dns: a.example } }'))).toEqual(['d.yaml:2:20 pools.web.discover.port: is required with dns: the port of the backends']);
    expect(problems(lines('pools:', '  web: { discover: { srv: _http._tcp.a, port: 80 } }'))).toEqual(['d.yaml:2:47 pools.web.discover.port: goes with dns only: SRV records carry their own port']);
    expect(problems(lines('pools:', '  web: { discover: { dns: a.example, srv: b, port: 1 } }'))).toEqual([
      'd.yaml:2:20 pools.web.discover: needs exactly one of dns (A and AAAA records, with port) or srv (SRV records, which carry the port)',
    ]);
    expect(problems(lines('pools:', '  web: { discover: { dns: "a b", port: 1, every: 0s } }'))).toEqual([
      'd.yaml:2:27 pools.web.discover.dns: not a DNS name: "a b" (labels of letters, digits, "-" and "_", separated by dots)',
      'd.yaml:2:50 pools.web.discover.every: must be greater than 0',
    ]);
    expect(problems(lines('resolver: dns.example:53', 'pools: { web: { backends: [http://a:1] } }'))).toEqual([
      'd.yaml:1:11 resolver: expected an IP address with an optional port, like 127.0.0.1:5353 or [::1]:53, got "dns.example:53"',
    ]);
  });
});
