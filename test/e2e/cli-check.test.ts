// End to end: `node dist/cli.js check --config FILE` exits 0 and says ok for a valid file, and
// exits 1 printing `FILE:LINE:COL field.path: message` for every mistake in a broken one.
// Needs `npm run build` first (`npm test` runs it as pretest).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'corelb-check-'));

function check(file: string, args: string[] = ['--config', file], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'check', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, ...lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('corelb check', () => {
  it.each(['config/corelb.yaml', 'config/demo.yaml'])('accepts %s: exit 0 and "ok"', (file) => {
    const r = check(file);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ok: ${file.replace('.', '\\.')} \\(\\d+ pools?, \\d+ backends?, \\d+ workers?\\)\\n$`));
  });

  it('reports every mistake in a file, one FILE:LINE:COL path: message line each', () => {
    const file = write(
      'broken.yaml',
      'listen: { host: 127.0.0.1, port: 0 }', // 1
      'workers: many', // 2
      'log: { level: loud }', // 3
      'timeouts:', // 4
      '  connect: 2', // 5
      'limits:', // 6
      '  max_body: 10xb', // 7
      'pools:', // 8
      '  web:', // 9
      '    algorithm: fastest', // 10
      '    backends:', // 11
      '      - ftp://127.0.0.1:3001', // 12
      '      - http://127.0.0.1:3002', // 13
      '      - http://127.0.0.1:3002/', // 14
      '      - { url: http://127.0.0.1:3003, weight: 0 }', // 15
      '      - { url: http://127.0.0.1:3004, weight: 2.5 }', // 16
      '      - not a url', // 17
      'routes:', // 18
      '  - { path_prefix: /, pool: missing }', // 19
      'colour: blue', // 20
    );
    const r = check(file);
    expect(r.status).toBe(1);
    expect(r.stdout.split('\n')).toEqual([
      `${file}:1:34 listen.port: expected an integer from 1 to 65535, got number 0`,
      `${file}:2:10 workers: expected "auto" or an integer from 1 to 1024, got string "many"`,
      `${file}:3:15 log.level: expected one of fatal, error, warn, info, debug, trace, silent, got string "loud"`,
      `${file}:5:12 timeouts.connect: needs a unit: ms, s, m or h (e.g. "2ms" or "2s")`,
      `${file}:7:13 limits.max_body: unknown size unit "xb" in "10xb": use b, kb, mb or gb`,
      `${file}:10:16 pools.web.algorithm: expected one of round-robin, least-connections, random, p2c, ewma, consistent-hash, got string "fastest"`,
      `${file}:12:9 pools.web.backends[0]: scheme must be http:// or https://, got "ftp:" in "ftp://127.0.0.1:3001" (write it like "http://127.0.0.1:3001")`,
      `${file}:14:9 pools.web.backends[2]: duplicate backend http://127.0.0.1:3002 (first at pools.web.backends[1], line 13)`,
      `${file}:15:47 pools.web.backends[3].weight: expected an integer from 1 to 1000, got number 0`,
      `${file}:16:47 pools.web.backends[4].weight: expected an integer from 1 to 1000, got number 2.5`,
      `${file}:17:9 pools.web.backends[5]: not a valid URL: "not a url" (write it like "http://127.0.0.1:3001")`,
      `${file}:19:29 routes[0].pool: unknown pool "missing"; pools: web`,
      `${file}:20:1 colour: unknown key "colour"; allowed keys: listen, workers, log, timeouts, limits, forwarded_for, state_file, resolver, pools, routes, admin, cache`,
      '',
    ]);
  });

  it('reports several pools without routes', () => {
    const file = write('two-pools.yaml', 'pools:', '  web: { backends: [http://a] }', '  api: { backends: [http://b] }');
    const r = check(file);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${file}:1:1 routes: is required when there is more than one pool (pools: web, api)\n`);
  });

  it('reports a duplicate YAML key at the second one', () => {
    const file = write('dup.yaml', 'listen:', '  port: 80', '  port: 81', 'pools:', '  web: { backends: [http://a] }');
    const r = check(file);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${file}:3:3 listen.port: duplicate key "port" (first at line 2)\n`);
  });

  it('reports a YAML syntax error where the broken string starts', () => {
    const file = write('syntax.yaml', 'pools:', '  web:', '    backends:', '      - "http://a', '      - http://b');
    const r = check(file);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${file}:4:9: YAML: this quoted string is never closed (Missing closing "quote)\n`);
  });

  it('reports a missing pools section and an empty file', () => {
    const file = write('empty.yaml', '# nothing here');
    const r = check(file);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${file}:1:1 pools: is required: define at least one pool of backends\n`);
  });

  it('reports a missing file at 1:1', () => {
    const file = join(dir, 'nope.yaml');
    const r = check(file);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${file}:1:1: cannot read the configuration file: no such file\n`);
  });

  it('--print FILE prints the normalised configuration as JSON, the environment replaced and the token masked', () => {
    const file = write(
      'print.yaml',
      'listen: { port: ${PORT:-8080} }',
      'workers: 2',
      'timeouts: { connect: 1.5s }',
      'admin: { port: 9091, token: "${ADMIN_TOKEN}" }',
      'pools:',
      '  web: { backends: [ "http://${BACKEND}", { url: "http://b:3002", weight: 3 } ] }',
    );
    const env = { ...process.env, PORT: '8181', ADMIN_TOKEN: 'print-token-0123456789', BACKEND: 'A.example:3001' };
    const r = check(file, ['--print', file], env);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).not.toContain('print-token-0123456789');
    const c = JSON.parse(r.stdout) as Record<string, any>;
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 8181, tls: null, redirectHttps: null, acmeWebroot: null }]);
    expect(c.workers).toBe(2);
    expect(c.timeouts.connectMs).toBe(1500);
    expect(c.admin).toEqual({ host: '127.0.0.1', port: 9091, token: '(set, not shown)' });
    expect(c.pools[0].backends.map((b: { url: string; weight: number }) => [b.url, b.weight])).toEqual([['http://a.example:3001', 1], ['http://b:3002', 3]]);
    expect(c.routes).toEqual([{ host: null, pathPrefix: '/', pool: 'web', cache: false }]);
    // the same file without the variable: the located problem, nothing printed
    const { ADMIN_TOKEN: _unset, ...without } = env;
    const bad = check(file, ['--print', '--config', file], without);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toBe(`${file}:4:30 admin.token: environment variable ADMIN_TOKEN is not set (give a default with \${ADMIN_TOKEN:-default})\n`);
  });
});
