// Tests for src/config/load.ts: every kind of mistake is reported at the right field, line and
// column with a useful message, all of them at once; valid files come back normalised and frozen.
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCommand, formatProblem, loadConfigFile, parseConfig } from '../../../src/config/index.js';
import type { Config, ConfigProblem } from '../../../src/config/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lines = (...l: string[]): string => `${l.join('\n')}\n`;
/** A minimal valid file: one pool, so no routes are needed. */
const POOL = lines('pools:', '  web:', '    backends:', '      - http://127.0.0.1:3001');

function problems(text: string): readonly ConfigProblem[] {
  const r = parseConfig(text, 'test.yaml', { availableParallelism: 4 });
  if (r.ok) throw new Error('expected problems, got a valid config');
  return r.problems;
}

function config(text: string, availableParallelism = 4): Config {
  const r = parseConfig(text, 'test.yaml', { availableParallelism });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

interface Mistake {
  name: string;
  text: string;
  path: string;
  line: number;
  col?: number;
  message: string;
}

const mistakes: Mistake[] = [
  { name: 'unknown top-level key', text: lines('listn:', '  port: 80') + POOL, path: 'listn', line: 1, col: 1, message: 'unknown key "listn"; allowed keys: listen, workers' },
  { name: 'unknown nested key', text: lines('listen:', '  host: 127.0.0.1', '  prot: 80') + POOL, path: 'listen.prot', line: 3, col: 3, message: 'allowed keys: host, port' },
  { name: 'unknown backend key', text: lines('pools:', '  web:', '    backends:', '      - url: http://a', '        wieght: 2'), path: 'pools.web.backends[0].wieght', line: 5, message: 'allowed keys: url, weight' },
  { name: 'unknown route key', text: POOL + lines('routes:', '  - { path: /, pool: web }'), path: 'routes[0].path', line: 6, message: 'allowed keys: host, path_prefix, pool' },
  { name: 'section of the wrong type', text: lines('listen: 8080') + POOL, path: 'listen', line: 1, col: 9, message: 'expected a mapping, got number 8080' },
  { name: 'port as a string', text: lines('listen:', '  port: "8080"') + POOL, path: 'listen.port', line: 2, col: 9, message: 'expected an integer from 1 to 65535, got string "8080"' },
  { name: 'port 0', text: lines('listen: { port: 0 }') + POOL, path: 'listen.port', line: 1, col: 17, message: 'expected an integer from 1 to 65535, got number 0' },
  { name: 'port too large', text: lines('listen: { port: 70000 }') + POOL, path: 'listen.port', line: 1, message: 'got number 70000' },
  { name: 'listen host with a port', text: lines('listen: { host: "localhost:80" }') + POOL, path: 'listen.host', line: 1, message: 'without a port' },
  { name: 'listen host of the wrong type', text: lines('listen: { host: [a] }') + POOL, path: 'listen.host', line: 1, message: 'expected an IP address or host name, got a list' },
  { name: 'bad URL', text: lines('pools:', '  web:', '    backends:', '      - "not a url"'), path: 'pools.web.backends[0]', line: 4, col: 9, message: 'not a valid URL' },
  { name: 'URL without http://', text: lines('pools:', '  web:', '    backends:', '      - localhost:3000'), path: 'pools.web.backends[0]', line: 4, message: 'scheme must be http://' },
  { name: 'https URL', text: lines('pools:', '  web:', '    backends:', '      - url: https://127.0.0.1:3001'), path: 'pools.web.backends[0].url', line: 4, col: 14, message: 'https backends are not supported' },
  { name: 'URL with a path', text: lines('pools:', '  web:', '    backends: [http://a/api]'), path: 'pools.web.backends[0]', line: 3, message: 'must not have a path' },
  { name: 'URL with user info', text: lines('pools:', '  web:', '    backends: ["http://u:p@a"]'), path: 'pools.web.backends[0]', line: 3, message: 'user name or password' },
  { name: 'URL with a query', text: lines('pools:', '  web:', '    backends: ["http://a/?x=1"]'), path: 'pools.web.backends[0]', line: 3, message: 'query string or fragment' },
  { name: 'URL with port 0', text: lines('pools:', '  web:', '    backends: ["http://a:0"]'), path: 'pools.web.backends[0]', line: 3, message: 'port must be from 1 to 65535' },
  { name: 'backend of the wrong type', text: lines('pools:', '  web:', '    backends: [42]'), path: 'pools.web.backends[0]', line: 3, message: 'expected a backend URL like "http://127.0.0.1:3001", got number 42' },
  { name: 'backend without url', text: lines('pools:', '  web:', '    backends:', '      - weight: 2'), path: 'pools.web.backends[0].url', line: 4, message: 'is required' },
  {
    name: 'duplicate backend (same normalised URL)',
    text: lines('pools:', '  web:', '    backends:', '      - http://127.0.0.1', '      - url: http://127.0.0.1:80/'),
    path: 'pools.web.backends[1].url',
    line: 5,
    message: 'duplicate backend http://127.0.0.1:80 (first at pools.web.backends[0], line 4)',
  },
  { name: 'route to a missing pool', text: POOL + lines('routes:', '  - path_prefix: /', '    pool: wbe'), path: 'routes[0].pool', line: 7, col: 11, message: 'unknown pool "wbe"; pools: web' },
  { name: 'route without pool', text: POOL + lines('routes:', '  - path_prefix: /'), path: 'routes[0].pool', line: 6, message: 'is required' },
  { name: 'route path_prefix without /', text: POOL + lines('routes:', '  - { path_prefix: v1, pool: web }'), path: 'routes[0].path_prefix', line: 6, message: 'must start with "/"' },
  { name: 'route host with a port', text: POOL + lines('routes:', '  - { host: "a.example.com:8080", pool: web }'), path: 'routes[0].host', line: 6, message: 'without a port' },
  { name: 'duplicate route', text: POOL + lines('routes:', '  - { pool: web }', '  - { path_prefix: /, pool: web }'), path: 'routes[1]', line: 7, message: 'same host and path_prefix as routes[0] (line 6)' },
  { name: 'empty routes list', text: POOL + lines('routes: []'), path: 'routes', line: 5, message: 'at least one route' },
  { name: 'weight 0', text: lines('pools:', '  web:', '    backends:', '      - url: http://a', '        weight: 0'), path: 'pools.web.backends[0].weight', line: 5, col: 17, message: 'expected an integer from 1 to 1000, got number 0' },
  { name: 'weight not an integer', text: lines('pools:', '  web:', '    backends:', '      - { url: http://a, weight: 1.5 }'), path: 'pools.web.backends[0].weight', line: 4, message: 'got number 1.5' },
  { name: 'weight too large', text: lines('pools:', '  web:', '    backends:', '      - { url: http://a, weight: 1001 }'), path: 'pools.web.backends[0].weight', line: 4, message: 'from 1 to 1000' },
  { name: 'unknown algorithm', text: lines('pools:', '  web:', '    algorithm: random', '    backends: [http://a]'), path: 'pools.web.algorithm', line: 3, message: 'expected one of round-robin, least-connections, got string "random"' },
  { name: 'bad pool name', text: lines('pools:', '  "w b":', '    backends: [http://a]'), path: 'pools.w b', line: 2, message: 'may only use letters, digits' },
  { name: 'pool without backends', text: lines('pools:', '  web:', '    algorithm: round-robin'), path: 'pools.web.backends', line: 3, message: 'is required' },
  { name: 'empty backends list', text: lines('pools:', '  web:', '    backends: []'), path: 'pools.web.backends', line: 3, message: 'at least one backend' },
  { name: 'duration without unit', text: lines('timeouts:', '  connect: 2') + POOL, path: 'timeouts.connect', line: 2, col: 12, message: 'needs a unit: ms, s or m' },
  { name: 'duration with unknown unit', text: lines('timeouts:', '  response: 1h') + POOL, path: 'timeouts.response', line: 2, message: 'unknown duration unit "h"' },
  { name: 'zero duration', text: lines('timeouts:', '  idle: 0s') + POOL, path: 'timeouts.idle', line: 2, message: 'must be greater than 0' },
  { name: 'duration beyond Node timers', text: lines('timeouts:', '  idle: 40000m') + POOL, path: 'timeouts.idle', line: 2, message: 'longest timer Node supports' },
  { name: 'bad size', text: lines('limits:', '  max_body: 10xb') + POOL, path: 'limits.max_body', line: 2, col: 13, message: 'unknown size unit "xb"' },
  { name: 'negative connection limit', text: lines('limits:', '  max_connections_per_backend: -1') + POOL, path: 'limits.max_connections_per_backend', line: 2, message: 'got number -1' },
  { name: 'missing pools', text: lines('workers: 2'), path: 'pools', line: 1, col: 1, message: 'is required' },
  { name: 'empty pools', text: lines('workers: 2', 'pools: {}'), path: 'pools', line: 2, col: 8, message: 'at least one pool' },
  { name: 'pools with nothing in it', text: lines('pools:'), path: 'pools', line: 1, message: 'at least one pool' },
  {
    name: 'several pools without routes',
    text: lines('pools:', '  web:', '    backends: [http://a]', '  api:', '    backends: [http://b]'),
    path: 'routes',
    line: 1,
    message: 'is required when there is more than one pool (pools: web, api)',
  },
  { name: 'YAML syntax error', text: lines('listen:', '  host: "127.0.0.1', '  port: 80') + POOL, path: '', line: 2, col: 9, message: 'YAML: this quoted string is never closed' },
  { name: 'unclosed single quote', text: POOL + lines('routes:', "  - pool: 'it''s"), path: '', line: 6, col: 11, message: 'never closed' },
  { name: 'unclosed quote after an escaped one', text: POOL + lines('routes:', '  - pool: "a\\"b'), path: '', line: 6, col: 11, message: 'never closed' },
  { name: 'YAML flow syntax error', text: lines('pools:', '  web:', '    backends: [http://a,, http://b]'), path: '', line: 3, col: 25, message: 'YAML: Unexpected , in flow sequence' },
  { name: 'tab indentation', text: lines('listen:', '\tport: 80') + POOL, path: '', line: 2, message: 'YAML: Tabs are not allowed' },
  { name: 'two YAML documents', text: POOL + lines('---', 'workers: 2'), path: '', line: 5, message: 'single document' },
  { name: 'duplicate YAML key', text: lines('listen:', '  port: 80', '  port: 81') + POOL, path: 'listen.port', line: 3, col: 3, message: 'duplicate key "port" (first at line 2)' },
  { name: 'duplicate pool name', text: POOL + lines('  web:', '    backends: [http://b]'), path: 'pools.web', line: 5, message: 'duplicate key "web"' },
  { name: 'unknown alias', text: lines('pools:', '  web:', '    backends: [*nope]'), path: 'pools.web.backends[0]', line: 3, message: 'unknown alias *nope' },
  { name: 'workers 0', text: lines('workers: 0') + POOL, path: 'workers', line: 1, col: 10, message: 'expected "auto" or an integer from 1 to 1024, got number 0' },
  { name: 'workers not auto', text: lines('workers: many') + POOL, path: 'workers', line: 1, message: 'got string "many"' },
  { name: 'workers fractional', text: lines('workers: 2.5') + POOL, path: 'workers', line: 1, message: 'got number 2.5' },
  { name: 'bad log level', text: lines('log:', '  level: loud') + POOL, path: 'log.level', line: 2, col: 10, message: 'expected one of fatal, error, warn, info, debug, trace, silent, got string "loud"' },
  { name: 'log access not a boolean', text: lines('log:', '  access: yes') + POOL, path: 'log.access', line: 2, message: 'expected true or false, got string "yes"' },
  { name: 'document not a mapping', text: lines('- pools'), path: '', line: 1, message: 'expected a mapping, got a list' },
];

describe('parseConfig reports mistakes', () => {
  it.each(mistakes)('$name', ({ text, path, line, col, message }) => {
    const found = problems(text);
    // Exactly one problem: a mistake must not drag spurious follow-up errors with it.
    expect(found.map(formatProblem)).toHaveLength(1);
    const p = found[0]!;
    expect(p.file).toBe('test.yaml');
    expect(p.path).toBe(path);
    expect(p.line).toBe(line);
    if (col !== undefined) expect(p.col).toBe(col);
    expect(p.message).toContain(message);
  });

  it('covers at least 12 kinds of mistakes', () => {
    expect(mistakes.length).toBeGreaterThanOrEqual(12);
  });

  it('collects every problem, in file order, instead of stopping at the first', () => {
    const found = problems(
      lines(
        'workers: 0',
        'listen: { port: 0, bogus: 1 }',
        'pools:',
        '  web:',
        '    backends:',
        '      - https://a',
        '      - { url: http://b, weight: 0 }',
        'routes:',
        '  - { pool: nope }',
      ),
    );
    expect(found.map((p) => `${p.line}:${p.col} ${p.path}`)).toEqual([
      '1:10 workers',
      '2:17 listen.port',
      '2:20 listen.bogus',
      '6:9 pools.web.backends[0]',
      '7:34 pools.web.backends[1].weight',
      '9:13 routes[0].pool',
    ]);
  });

  it('reports both a bad URL and a bad weight in the same backend', () => {
    const found = problems(lines('pools:', '  web:', '    backends:', '      - { url: ftp://a, weight: 0 }'));
    expect(found.map((p) => p.path)).toEqual(['pools.web.backends[0].url', 'pools.web.backends[0].weight']);
  });

  it('never throws, whatever the input', () => {
    for (const text of ['', '\u0000', ':', '[', '{{{', '*a', '!!binary x', 'pools: !!set {a}', 'a: &x [*x]', '? [a]\n: 1']) {
      expect(() => parseConfig(text, 't.yaml')).not.toThrow();
    }
  });

  it('formats a problem as FILE:LINE:COL path: message', () => {
    const p = problems(lines('listen: { port: 0 }') + POOL)[0]!;
    expect(formatProblem(p)).toBe('test.yaml:1:17 listen.port: expected an integer from 1 to 65535, got number 0');
    expect(formatProblem({ file: 'f.yaml', line: 2, col: 3, path: '', message: 'YAML: bad\nthing' })).toBe('f.yaml:2:3: YAML: bad thing');
  });
});

describe('parseConfig accepts valid files', () => {
  it('applies every default', () => {
    const c = config(POOL);
    expect(c).toEqual({
      listen: { host: '127.0.0.1', port: 8080 },
      workers: 4,
      log: { level: 'info', access: false },
      timeouts: { connectMs: 2000, responseMs: 30_000, idleMs: 60_000, queueMs: 1000, drainMs: 10_000 },
      limits: { maxBodyBytes: 10 * 1024 * 1024, maxConnectionsPerBackend: 0 },
      pools: [
        {
          name: 'web',
          algorithm: 'round-robin',
          backends: [{ url: 'http://127.0.0.1:3001', host: '127.0.0.1', port: 3001, weight: 1 }],
          health: null,
          passive: { failures: 5, windowMs: 10_000, ejectMs: 30_000 },
          slowStartMs: 0,
          retries: 2,
          retryBudget: 0.2,
        },
      ],
      routes: [{ host: null, pathPrefix: '/', pool: 'web' }],
    });
  });

  it('treats an empty section (everything commented out) as defaults', () => {
    const c = config(lines('log:', '  # level: debug', 'timeouts:', 'limits:', 'routes:') + POOL);
    expect(c.log).toEqual({ level: 'info', access: false });
    expect(c.timeouts.connectMs).toBe(2000);
    expect(c.routes).toEqual([{ host: null, pathPrefix: '/', pool: 'web' }]);
  });

  it('reads every setting', () => {
    const c = config(
      lines(
        'listen: { host: "::", port: 9000 }',
        'workers: 3',
        'log: { level: debug, access: true }',
        'timeouts: { connect: 500ms, response: 1.5s, idle: 2m }',
        'limits: { max_body: 512kb, max_connections_per_backend: 64 }',
      ) + POOL,
    );
    expect(c.listen).toEqual({ host: '::', port: 9000 });
    expect(c.workers).toBe(3);
    expect(c.log).toEqual({ level: 'debug', access: true });
    expect(c.timeouts).toEqual({ connectMs: 500, responseMs: 1500, idleMs: 120_000 });
    expect(c.limits).toEqual({ maxBodyBytes: 512 * 1024, maxConnectionsPerBackend: 64 });
  });

  it('accepts the shorthand and the long backend forms, and normalises URLs', () => {
    const c = config(
      lines(
        'pools:',
        '  web:',
        '    algorithm: least-connections',
        '    backends:',
        '      - http://Backend.Example.COM',
        '      - { url: "http://10.0.0.1:8080/", weight: 7 }',
        '      - http://[::1]:3000',
      ),
    );
    expect(c.pools[0]).toEqual({
      name: 'web',
      algorithm: 'least-connections',
      backends: [
        { url: 'http://backend.example.com:80', host: 'backend.example.com', port: 80, weight: 1 },
        { url: 'http://10.0.0.1:8080', host: '10.0.0.1', port: 8080, weight: 7 },
        { url: 'http://[::1]:3000', host: '::1', port: 3000, weight: 1 },
      ],
    });
  });

  it('keeps routes in file order and normalises route hosts', () => {
    const c = config(
      lines(
        'pools:',
        '  web: { backends: [http://a] }',
        '  api: { backends: [http://b] }',
        'routes:',
        '  - { host: API.Example.com, path_prefix: /v1, pool: api }',
        '  - { host: api.example.com, pool: api }',
        '  - { pool: web }',
      ),
    );
    expect(c.pools.map((p) => p.name)).toEqual(['web', 'api']);
    expect(c.routes).toEqual([
      { host: 'api.example.com', pathPrefix: '/v1', pool: 'api' },
      { host: 'api.example.com', pathPrefix: '/', pool: 'api' },
      { host: null, pathPrefix: '/', pool: 'web' },
    ]);
  });

  it('turns max_body: 0 (no limit) into a limit nothing reaches', () => {
    expect(config(lines('limits: { max_body: 0 }') + POOL).limits.maxBodyBytes).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('resolves workers: auto from availableParallelism (option, then the machine)', () => {
    expect(config(lines('workers: auto') + POOL, 7).workers).toBe(7);
    const r = parseConfig(lines('workers: auto') + POOL, 'test.yaml');
    expect(r.ok && r.config.workers).toBeGreaterThanOrEqual(1);
  });

  it('follows YAML anchors and aliases', () => {
    const c = config(lines('pools:', '  a: &pool { backends: [http://x] }', '  b: *pool', 'routes: [{ pool: a }, { path_prefix: /b, pool: b }]'));
    expect(c.pools.map((p) => p.backends[0]?.url)).toEqual(['http://x:80', 'http://x:80']);
  });

  it('deep-freezes the result', () => {
    const c = config(POOL);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.listen)).toBe(true);
    expect(Object.isFrozen(c.pools)).toBe(true);
    expect(Object.isFrozen(c.pools[0])).toBe(true);
    expect(Object.isFrozen(c.pools[0]?.backends[0])).toBe(true);
    expect(Object.isFrozen(c.routes[0])).toBe(true);
    expect(() => {
      (c.listen as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it.each(['config/corelb.yaml', 'config/demo.yaml'])('loads %s', (file) => {
    const r = loadConfigFile(join(root, file));
    expect(r.ok ? [] : r.problems.map(formatProblem)).toEqual([]);
  });

  it('config/demo.yaml is the demo: one round-robin pool of three local backends', () => {
    const r = loadConfigFile(join(root, 'config/demo.yaml'));
    if (!r.ok) throw new Error('demo.yaml does not load');
    expect(r.config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(r.config.log.access).toBe(true);
    expect(r.config.pools).toEqual([
      {
        name: 'demo',
        algorithm: 'round-robin',
        backends: [3001, 3002, 3003].map((port) => ({ url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port, weight: 1 })),
      },
    ]);
  });

  it('config/corelb.yaml uses two pools and routes', () => {
    const r = loadConfigFile(join(root, 'config/corelb.yaml'));
    if (!r.ok) throw new Error('corelb.yaml does not load');
    expect(r.config.pools).toHaveLength(2);
    expect(r.config.routes.length).toBeGreaterThanOrEqual(2);
  });
});

describe('loadConfigFile and checkCommand', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corelb-config-'));

  it('reports a missing file at 1:1', () => {
    const file = join(dir, 'missing.yaml');
    const r = loadConfigFile(file);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toEqual([{ file, line: 1, col: 1, path: '', message: 'cannot read the configuration file: no such file' }]);
  });

  it('reports a directory at 1:1', () => {
    const r = loadConfigFile(dir);
    expect(!r.ok && r.problems[0]?.message).toContain('is a directory');
  });

  it('check: exit 0 and a summary for a valid file', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, lines('workers: 2') + POOL);
    expect(checkCommand(file)).toEqual({ exitCode: 0, output: `ok: ${file} (1 pool, 1 backend, 2 workers)\n` });
  });

  it('check: exit 1 and one FILE:LINE:COL line per problem', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, lines('workers: 0', 'listen: { port: 0 }') + POOL);
    expect(checkCommand(file)).toEqual({
      exitCode: 1,
      output:
        `${file}:1:10 workers: expected "auto" or an integer from 1 to 1024, got number 0\n` +
        `${file}:2:17 listen.port: expected an integer from 1 to 65535, got number 0\n`,
    });
  });
});
