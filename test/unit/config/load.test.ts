// Tests for src/config/load.ts: every kind of mistake is reported at the right field, line and
// column with a useful message, all of them at once; valid files come back normalised and frozen.
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALGORITHMS, checkCommand, formatProblem, loadConfigFile, parseConfig } from '../../../src/config/index.js';
import type { Config, ConfigProblem, PoolConfig } from '../../../src/config/index.js';
import { ADMIN_KEYS } from '../../../src/config/admin-settings.js';
import { POOL_KEYS } from '../../../src/config/pools.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lines = (...l: string[]): string => `${l.join('\n')}\n`;
/** A minimal valid file: one pool, so no routes are needed. */
const POOL = lines('pools:', '  web:', '    backends:', '      - http://127.0.0.1:3001');
/** POOL's three lines with more pool settings from line 4, column 5. */
const pool = (...settings: string[]): string => lines('pools:', '  web:', '    backends: [http://a]', ...settings);
/** A round-robin pool's settings when none is given, spelled out rather than imported. */
const POOL_SETTINGS = {
  health: null,
  passive: { failures: 5, windowMs: 10_000, ejectMs: 30_000 },
  slowStartMs: 0,
  retries: 2,
  retryBudget: 0.2,
  hashKey: null,
  hashBalanceFactor: 0,
  ewmaDecayMs: 10_000,
  sticky: null,
  discover: null,
  tls: null,
  cache: false,
} as const;
/** pool() for a consistent-hash pool: the settings start at line 5, column 5. */
const hashed = (...settings: string[]): string => pool('    algorithm: consistent-hash', ...settings);
const TOKEN_CHARS = "letters, digits and !#$%&'*+-.^_`|~";
const HASH_KEY_FORMS = 'expected path, ip, header:NAME, cookie:NAME or query:NAME (like "header:x-user-id")';
const HOUR = 3_600_000;
/** A directory for log.file cases: one existing file, one missing subdirectory. */
const LOG_DIR = mkdtempSync(join(tmpdir(), 'corelb-logfile-'));
const A_FILE = join(LOG_DIR, 'plain-file');
writeFileSync(A_FILE, '');
const HEALTH = { path: '/healthz', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, expectMin: 200, expectMax: 399 } as const;

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
  { name: 'section of the wrong type', text: lines('listen: 8080') + POOL, path: 'listen', line: 1, col: 9, message: 'expected a listener ({host, port, tls}) or a list of them, got number 8080' },
  { name: 'port as a string', text: lines('listen:', '  port: "8080"') + POOL, path: 'listen.port', line: 2, col: 9, message: 'expected an integer from 1 to 65535, got string "8080"' },
  { name: 'port 0', text: lines('listen: { port: 0 }') + POOL, path: 'listen.port', line: 1, col: 17, message: 'expected an integer from 1 to 65535, got number 0' },
  { name: 'port too large', text: lines('listen: { port: 70000 }') + POOL, path: 'listen.port', line: 1, message: 'got number 70000' },
  { name: 'listen host with a port', text: lines('listen: { host: "localhost:80" }') + POOL, path: 'listen.host', line: 1, message: 'without a port' },
  { name: 'listen host of the wrong type', text: lines('listen: { host: [a] }') + POOL, path: 'listen.host', line: 1, message: 'expected an IP address or host name, got a list' },
  { name: 'bad URL', text: lines('pools:', '  web:', '    backends:', '      - "not a url"'), path: 'pools.web.backends[0]', line: 4, col: 9, message: 'not a valid URL' },
  { name: 'URL without http://', text: lines('pools:', '  web:', '    backends:', '      - localhost:3000'), path: 'pools.web.backends[0]', line: 4, message: 'scheme must be http://' },
  { name: 'ftp URL', text: lines('pools:', '  web:', '    backends:', '      - url: ftp://127.0.0.1:3001'), path: 'pools.web.backends[0].url', line: 4, col: 14, message: 'scheme must be http:// or https://, got "ftp:"' },
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
  {
    name: 'unknown algorithm',
    text: lines('pools:', '  web:', '    algorithm: fastest', '    backends: [http://a]'),
    path: 'pools.web.algorithm',
    line: 3,
    col: 16,
    message: 'expected one of round-robin, least-connections, random, p2c, ewma, consistent-hash, got string "fastest"',
  },
  { name: 'bad pool name', text: lines('pools:', '  "w b":', '    backends: [http://a]'), path: 'pools.w b', line: 2, message: 'may only use letters, digits' },
  { name: 'pool without backends', text: lines('pools:', '  web:', '    algorithm: round-robin'), path: 'pools.web.backends', line: 3, message: 'is required' },
  { name: 'empty backends list', text: lines('pools:', '  web:', '    backends: []'), path: 'pools.web.backends', line: 3, message: 'at least one backend' },
  { name: 'unknown pool key', text: pool('    helth: {}'), path: 'pools.web.helth', line: 4, col: 5, message: 'allowed keys: algorithm, backends, health, passive, slow_start, retries, retry_budget, hash_key, hash_balance_factor, ewma_decay, sticky, discover' },
  { name: 'unknown health key', text: pool('    health:', '      paht: /x'), path: 'pools.web.health.paht', line: 5, col: 7, message: 'unknown key "paht"; allowed keys: path, interval, timeout, rise, fall, expect' },
  { name: 'unknown passive key', text: pool('    passive: { failure: 3 }'), path: 'pools.web.passive.failure', line: 4, col: 16, message: 'allowed keys: failures, window, eject' },
  { name: 'duplicate health key', text: pool('    health:', '      rise: 2', '      rise: 3'), path: 'pools.web.health.rise', line: 6, col: 7, message: 'duplicate key "rise" (first at line 5)' },
  { name: 'health neither a switch nor a mapping', text: pool('    health: yes'), path: 'pools.web.health', line: 4, col: 13, message: 'expected true, false or a mapping of health check settings, got string "yes"' },
  { name: 'health as a list', text: pool('    health: [/healthz]'), path: 'pools.web.health', line: 4, message: 'got a list' },
  { name: 'passive neither a switch nor a mapping', text: pool('    passive: 5'), path: 'pools.web.passive', line: 4, col: 14, message: 'expected true, false or a mapping of passive check settings, got number 5' },
  { name: 'health path without /', text: pool('    health:', '      path: healthz'), path: 'pools.web.health.path', line: 5, col: 13, message: 'must start with "/", got "healthz"' },
  { name: 'health path with a blank', text: pool('    health:', '      path: "/health z"'), path: 'pools.web.health.path', line: 5, message: 'must not contain blanks, "#" or characters outside printable ASCII' },
  { name: 'health path with #', text: pool('    health:', '      path: /healthz#top'), path: 'pools.web.health.path', line: 5, message: 'got "/healthz#top"' },
  { name: 'health path not ASCII', text: pool('    health:', '      path: /état'), path: 'pools.web.health.path', line: 5, message: 'percent-encode' },
  { name: 'health path a number', text: pool('    health:', '      path: 200'), path: 'pools.web.health.path', line: 5, message: 'expected a path starting with "/", got number 200' },
  { name: 'health interval without unit', text: pool('    health:', '      interval: 2'), path: 'pools.web.health.interval', line: 5, col: 17, message: 'needs a unit: ms, s, m or h' },
  { name: 'health interval 0s', text: pool('    health: { interval: 0s }'), path: 'pools.web.health.interval', line: 4, message: 'must be greater than 0' },
  {
    name: 'health timeout longer than the interval',
    text: pool('    health: { interval: 2s, timeout: 3s }'),
    path: 'pools.web.health.timeout',
    line: 4,
    col: 38,
    message: 'must be at most the interval (2s), got 3s',
  },
  { name: 'health timeout longer than the default interval', text: pool('    health:', '      timeout: 2500ms'), path: 'pools.web.health.timeout', line: 5, message: 'must be at most the interval (2s), got 2500ms' },
  // The interval is wrong, so there is nothing to compare the timeout with: one problem, not two.
  { name: 'bad interval, long timeout', text: pool('    health: { interval: 2, timeout: 3s }'), path: 'pools.web.health.interval', line: 4, message: 'needs a unit' },
  { name: 'health rise 0', text: pool('    health: { rise: 0 }'), path: 'pools.web.health.rise', line: 4, message: 'expected an integer from 1 to 100, got number 0' },
  { name: 'health fall too large', text: pool('    health: { fall: 101 }'), path: 'pools.web.health.fall', line: 4, message: 'expected an integer from 1 to 100, got number 101' },
  { name: 'health fall not an integer', text: pool('    health: { fall: "3" }'), path: 'pools.web.health.fall', line: 4, message: 'got string "3"' },
  {
    name: 'health expect in another form',
    text: pool('    health:', '      expect: 2xx'),
    path: 'pools.web.health.expect',
    line: 5,
    col: 15,
    message: 'expected a status range like "200-399" or one status code like 200, got string "2xx"',
  },
  { name: 'health expect a list', text: pool('    health:', '      expect: [200, 204]'), path: 'pools.web.health.expect', line: 5, message: 'or one status code like 200, got a list' },
  { name: 'health expect fractional', text: pool('    health: { expect: 200.5 }'), path: 'pools.web.health.expect', line: 4, message: 'got number 200.5' },
  { name: 'health expect not a status', text: pool('    health: { expect: 600 }'), path: 'pools.web.health.expect', line: 4, message: 'status codes are from 100 to 599, got number 600' },
  { name: 'health expect range beyond 599', text: pool('    health: { expect: 200-600 }'), path: 'pools.web.health.expect', line: 4, message: 'status codes are from 100 to 599, got string "200-600"' },
  { name: 'health expect range below 100', text: pool('    health: { expect: 99-200 }'), path: 'pools.web.health.expect', line: 4, message: 'status codes are from 100 to 599' },
  { name: 'health expect range backwards', text: pool('    health: { expect: 399-200 }'), path: 'pools.web.health.expect', line: 4, message: '399 is greater than 200: write the range low-high, like "200-399"' },
  { name: 'passive failures 0', text: pool('    passive:', '      failures: 0'), path: 'pools.web.passive.failures', line: 5, col: 17, message: 'expected an integer from 1 to 1000000, got number 0' },
  { name: 'passive window without unit', text: pool('    passive: { window: 10 }'), path: 'pools.web.passive.window', line: 4, message: 'needs a unit: ms, s, m or h' },
  { name: 'passive eject with unknown unit', text: pool('    passive: { eject: 1d }'), path: 'pools.web.passive.eject', line: 4, message: 'unknown duration unit "d" in "1d": use ms, s, m or h' },
  { name: 'passive eject 0s', text: pool('    passive: { eject: 0s }'), path: 'pools.web.passive.eject', line: 4, message: 'must be greater than 0' },
  { name: 'slow_start without unit', text: pool('    slow_start: 30'), path: 'pools.web.slow_start', line: 4, col: 17, message: 'needs a unit: ms, s, m or h (e.g. "30ms" or "30s")' },
  { name: 'slow_start true', text: pool('    slow_start: true'), path: 'pools.web.slow_start', line: 4, message: 'expected a duration like "500ms", "2s" or "1m", got boolean true' },
  { name: 'slow_start negative', text: pool('    slow_start: -5s'), path: 'pools.web.slow_start', line: 4, message: 'expected a duration' },
  { name: 'slow_start a mapping', text: pool('    slow_start: { ms: 5 }'), path: 'pools.web.slow_start', line: 4, message: 'expected a duration like "30s", or 0 for off, got a mapping' },
  { name: 'retries too many', text: pool('    retries: 11'), path: 'pools.web.retries', line: 4, col: 14, message: 'expected an integer from 0 to 10, got number 11' },
  { name: 'retries negative', text: pool('    retries: -1'), path: 'pools.web.retries', line: 4, message: 'got number -1' },
  { name: 'retries false', text: pool('    retries: false'), path: 'pools.web.retries', line: 4, message: 'got boolean false' },
  { name: 'retry_budget without %', text: pool('    retry_budget: 20'), path: 'pools.web.retry_budget', line: 4, col: 19, message: 'needs a % sign, like 20% (got number 20)' },
  { name: 'retry_budget as a fraction', text: pool('    retry_budget: 0.2'), path: 'pools.web.retry_budget', line: 4, message: 'needs a % sign, like 20% (got number 0.2)' },
  { name: 'retry_budget above 100%', text: pool('    retry_budget: 150%'), path: 'pools.web.retry_budget', line: 4, message: 'must be from 0% to 100%, got "150%"' },
  { name: 'retry_budget negative', text: pool('    retry_budget: -5%'), path: 'pools.web.retry_budget', line: 4, message: 'expected a percentage like "20%", got string "-5%"' },
  { name: 'retry_budget in words', text: pool('    retry_budget: twenty'), path: 'pools.web.retry_budget', line: 4, message: 'got string "twenty"' },
  // Settings that belong to one algorithm, on a pool with another: reported at the key.
  {
    name: 'hash_key with the default algorithm',
    text: pool('    hash_key: path'),
    path: 'pools.web.hash_key',
    line: 4,
    col: 5,
    message: 'only used with algorithm: consistent-hash; this pool uses round-robin (the default)',
  },
  {
    name: 'hash_key with least-connections',
    text: pool('    algorithm: least-connections', '    hash_key: ip'),
    path: 'pools.web.hash_key',
    line: 5,
    col: 5,
    message: 'only used with algorithm: consistent-hash; this pool uses least-connections',
  },
  {
    name: 'hash_balance_factor with p2c',
    text: pool('    algorithm: p2c', '    hash_balance_factor: 1.25'),
    path: 'pools.web.hash_balance_factor',
    line: 5,
    col: 5,
    message: 'only used with algorithm: consistent-hash; this pool uses p2c',
  },
  { name: 'ewma_decay with consistent-hash', text: hashed('    ewma_decay: 5s'), path: 'pools.web.ewma_decay', line: 5, col: 5, message: 'only used with algorithm: ewma; this pool uses consistent-hash' },
  { name: 'ewma_decay with random', text: pool('    algorithm: random', '    ewma_decay: 5s'), path: 'pools.web.ewma_decay', line: 5, message: 'only used with algorithm: ewma; this pool uses random' },
  { name: 'ewma_decay with the default algorithm', text: pool('    ewma_decay: 5s'), path: 'pools.web.ewma_decay', line: 4, message: 'this pool uses round-robin (the default)' },
  // A wrong algorithm is the one mistake: its settings are not blamed on round-robin too.
  {
    name: 'misspelt algorithm with a hash_key',
    text: pool('    algorithm: consistent_hash', '    hash_key: header:x-user-id'),
    path: 'pools.web.algorithm',
    line: 4,
    col: 16,
    message: 'got string "consistent_hash"',
  },
  { name: 'hash_key of an unknown kind', text: hashed('    hash_key: host'), path: 'pools.web.hash_key', line: 5, col: 15, message: `${HASH_KEY_FORMS}, got string "host"` },
  { name: 'hash_key kind in capitals', text: hashed('    hash_key: Header:x-user-id'), path: 'pools.web.hash_key', line: 5, message: 'got string "Header:x-user-id"' },
  { name: 'hash_key as a mapping', text: hashed('    hash_key: { header: x-user-id }'), path: 'pools.web.hash_key', line: 5, message: `${HASH_KEY_FORMS}, got a mapping` },
  { name: 'hash_key a number', text: hashed('    hash_key: 42'), path: 'pools.web.hash_key', line: 5, message: 'got number 42' },
  { name: 'hash_key path with a name', text: hashed('    hash_key: path:/api'), path: 'pools.web.hash_key', line: 5, message: 'path takes no name, got "path:/api": write hash_key: path' },
  { name: 'hash_key ip with a name', text: hashed('    hash_key: "ip:"'), path: 'pools.web.hash_key', line: 5, message: 'ip takes no name' },
  { name: 'hash_key header without a name', text: hashed('    hash_key: header'), path: 'pools.web.hash_key', line: 5, col: 15, message: 'header needs a name after the colon, like header:x-user-id (got "header")' },
  { name: 'hash_key header with an empty name', text: hashed('    hash_key: "header: "'), path: 'pools.web.hash_key', line: 5, message: 'header needs a name after the colon' },
  { name: 'hash_key cookie without a name', text: hashed('    hash_key: "cookie:"'), path: 'pools.web.hash_key', line: 5, message: 'cookie needs a name after the colon, like cookie:session' },
  { name: 'hash_key query without a name', text: hashed('    hash_key: query'), path: 'pools.web.hash_key', line: 5, message: 'query needs a name after the colon, like query:user' },
  {
    name: 'hash_key header name with a blank',
    text: hashed('    hash_key: "header:x user"'),
    path: 'pools.web.hash_key',
    line: 5,
    message: `header name (an HTTP token) may only use ${TOKEN_CHARS}, got "x user"`,
  },
  { name: 'hash_key header name with @', text: hashed('    hash_key: header:user@id'), path: 'pools.web.hash_key', line: 5, message: 'header name (an HTTP token) may only use' },
  { name: 'hash_key header name with a colon', text: hashed('    hash_key: header:x:y'), path: 'pools.web.hash_key', line: 5, message: 'got "x:y"' },
  { name: 'hash_key cookie name with =', text: hashed('    hash_key: cookie:a=b'), path: 'pools.web.hash_key', line: 5, message: `cookie name (an RFC 6265 token) may only use ${TOKEN_CHARS}, got "a=b"` },
  { name: 'hash_key cookie name with ;', text: hashed('    hash_key: cookie:a;b'), path: 'pools.web.hash_key', line: 5, message: 'got "a;b"' },
  { name: 'hash_key query name with =', text: hashed('    hash_key: query:a=b'), path: 'pools.web.hash_key', line: 5, message: 'query parameter name must not contain "&", "=", "#" or blanks, got "a=b"' },
  { name: 'hash_key query name with &', text: hashed('    hash_key: query:a&b'), path: 'pools.web.hash_key', line: 5, message: 'got "a&b"' },
  { name: 'hash_key query name with #', text: hashed('    hash_key: query:a#b'), path: 'pools.web.hash_key', line: 5, message: 'got "a#b"' },
  { name: 'hash_key query name with a blank', text: hashed('    hash_key: "query:a b"'), path: 'pools.web.hash_key', line: 5, message: 'got "a b"' },
  {
    name: 'hash_balance_factor below 1',
    text: hashed('    hash_balance_factor: 0.5'),
    path: 'pools.web.hash_balance_factor',
    line: 5,
    col: 26,
    message: 'must be 0 (off) or at least 1, got 0.5: below 1 the backends together could not take the average load',
  },
  {
    name: 'hash_balance_factor as a percentage',
    text: hashed('    hash_balance_factor: 125'),
    path: 'pools.web.hash_balance_factor',
    line: 5,
    message: 'must be at most 100, got 125: it is a factor, not a percentage (1.25 lets a backend take 125% of the average)',
  },
  {
    name: 'hash_balance_factor with a % sign',
    text: hashed('    hash_balance_factor: 125%'),
    path: 'pools.web.hash_balance_factor',
    line: 5,
    message: 'expected 0 (off) or a number from 1 to 100, like 1.25, got string "125%"',
  },
  { name: 'hash_balance_factor negative', text: hashed('    hash_balance_factor: -1'), path: 'pools.web.hash_balance_factor', line: 5, message: 'got number -1' },
  { name: 'hash_balance_factor infinite', text: hashed('    hash_balance_factor: .inf'), path: 'pools.web.hash_balance_factor', line: 5, message: 'got number Infinity' },
  { name: 'hash_balance_factor true', text: hashed('    hash_balance_factor: true'), path: 'pools.web.hash_balance_factor', line: 5, message: 'got boolean true' },
  { name: 'ewma_decay without unit', text: pool('    algorithm: ewma', '    ewma_decay: 10'), path: 'pools.web.ewma_decay', line: 5, col: 17, message: 'needs a unit: ms, s, m or h' },
  { name: 'ewma_decay 0s', text: pool('    algorithm: ewma', '    ewma_decay: 0s'), path: 'pools.web.ewma_decay', line: 5, message: 'must be greater than 0' },
  { name: 'ewma_decay a mapping', text: pool('    algorithm: ewma', '    ewma_decay: { s: 10 }'), path: 'pools.web.ewma_decay', line: 5, message: 'expected a duration like "2s", got a mapping' },
  { name: 'sticky: true', text: pool('    sticky: true'), path: 'pools.web.sticky', line: 4, col: 13, message: 'expected false or a mapping like { cookie: lb, ttl: 1h }, got boolean true' },
  { name: 'sticky: a bare cookie name', text: pool('    sticky: lb'), path: 'pools.web.sticky', line: 4, message: 'got string "lb"' },
  { name: 'sticky as a list', text: pool('    sticky: [lb]'), path: 'pools.web.sticky', line: 4, message: 'got a list' },
  { name: 'sticky without a cookie', text: pool('    sticky: { ttl: 1h }'), path: 'pools.web.sticky.cookie', line: 4, col: 13, message: 'is required: the name of the cookie that keeps a client on its backend' },
  { name: 'sticky with nothing under it', text: pool('    sticky:', '      # cookie: lb'), path: 'pools.web.sticky.cookie', line: 4, message: 'is required' },
  { name: 'unknown sticky key', text: pool('    sticky:', '      cookie: lb', '      max_age: 1h'), path: 'pools.web.sticky.max_age', line: 6, col: 7, message: 'unknown key "max_age"; allowed keys: cookie, ttl' },
  { name: 'sticky cookie with a blank', text: pool('    sticky: { cookie: "lb id" }'), path: 'pools.web.sticky.cookie', line: 4, col: 23, message: `cookie name (an RFC 6265 token) may only use ${TOKEN_CHARS}, got "lb id"` },
  { name: 'sticky cookie with =', text: pool('    sticky: { cookie: "a=b" }'), path: 'pools.web.sticky.cookie', line: 4, message: 'got "a=b"' },
  { name: 'sticky cookie empty', text: pool('    sticky: { cookie: "" }'), path: 'pools.web.sticky.cookie', line: 4, message: 'must not be empty' },
  { name: 'sticky cookie a number', text: pool('    sticky: { cookie: 5 }'), path: 'pools.web.sticky.cookie', line: 4, message: 'expected a cookie name, got number 5' },
  { name: 'sticky ttl without unit', text: pool('    sticky: { cookie: lb, ttl: 30 }'), path: 'pools.web.sticky.ttl', line: 4, col: 32, message: 'needs a unit: ms, s, m or h (e.g. "30ms" or "30s")' },
  {
    name: 'sticky ttl not in whole seconds',
    text: pool('    sticky: { cookie: lb, ttl: 1500ms }'),
    path: 'pools.web.sticky.ttl',
    line: 4,
    message: `must be a whole number of seconds (a cookie's Max-Age counts seconds), got "1500ms"`,
  },
  {
    name: 'sticky ttl beyond 400 days',
    text: pool('    sticky: { cookie: lb, ttl: 9601h }'),
    path: 'pools.web.sticky.ttl',
    line: 4,
    message: 'must be at most 9600h (400 days, the longest a browser keeps a cookie), got "9601h"',
  },
  { name: 'sticky ttl negative', text: pool('    sticky: { cookie: lb, ttl: -1h }'), path: 'pools.web.sticky.ttl', line: 4, message: 'expected a duration like "500ms", "2s" or "1m", got string "-1h"' },
  { name: 'sticky ttl false', text: pool('    sticky: { cookie: lb, ttl: false }'), path: 'pools.web.sticky.ttl', line: 4, message: 'got boolean false' },
  { name: 'sticky ttl with an unknown unit', text: pool('    sticky: { cookie: lb, ttl: 1d }'), path: 'pools.web.sticky.ttl', line: 4, message: 'unknown duration unit "d"' },
  { name: 'queue timeout without unit', text: lines('timeouts:', '  queue: 1') + POOL, path: 'timeouts.queue', line: 2, col: 10, message: 'needs a unit: ms, s, m or h' },
  { name: 'drain timeout 0s', text: lines('timeouts:', '  drain: 0s') + POOL, path: 'timeouts.drain', line: 2, message: 'must be greater than 0' },
  { name: 'drain timeout beyond Node timers', text: lines('timeouts:', '  drain: 40000m') + POOL, path: 'timeouts.drain', line: 2, message: 'longest timer Node supports' },
  { name: 'duration without unit', text: lines('timeouts:', '  connect: 2') + POOL, path: 'timeouts.connect', line: 2, col: 12, message: 'needs a unit: ms, s, m or h' },
  { name: 'duration with unknown unit', text: lines('timeouts:', '  response: 1H') + POOL, path: 'timeouts.response', line: 2, message: 'unknown duration unit "H"' },
  { name: 'hours beyond Node timers', text: lines('timeouts:', '  idle: 597h') + POOL, path: 'timeouts.idle', line: 2, message: 'longest timer Node supports' },
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
  { name: 'forwarded_for not a boolean', text: lines('forwarded_for: off') + POOL, path: 'forwarded_for', line: 1, col: 16, message: 'expected true or false, got string "off"' },
  { name: 'log file not a string', text: lines('log:', '  file: 5') + POOL, path: 'log.file', line: 2, col: 9, message: 'expected a file path, got number 5' },
  { name: 'log file empty', text: lines('log:', '  file: ""') + POOL, path: 'log.file', line: 2, col: 9, message: 'must not be empty' },
  { name: 'log file in a missing directory', text: lines('log:', `  file: ${join(LOG_DIR, 'nope', 'x.log')}`) + POOL, path: 'log.file', line: 2, col: 9, message: `directory ${join(LOG_DIR, 'nope')} does not exist` },
  { name: 'log file under a file', text: lines('log:', `  file: ${join(A_FILE, 'x.log')}`) + POOL, path: 'log.file', line: 2, message: `${A_FILE} is not a directory` },
  { name: 'log file is a directory', text: lines('log:', `  file: ${LOG_DIR}`) + POOL, path: 'log.file', line: 2, message: `${LOG_DIR} is a directory, not a file` },
  { name: 'document not a mapping', text: lines('- pools'), path: '', line: 1, message: 'expected a mapping, got a list' },
  { name: 'unknown admin key', text: lines('admin:', '  port: 9090', '  tokn: x') + POOL, path: 'admin.tokn', line: 3, col: 3, message: 'unknown key "tokn"; allowed keys: host, port, token' },
  { name: 'admin without a port', text: lines('admin:', '  host: 127.0.0.1') + POOL, path: 'admin.port', line: 2, col: 3, message: 'is required: the port of the admin server' },
  { name: 'admin with nothing under it', text: lines('admin:') + POOL, path: 'admin.port', line: 1, message: 'is required' },
  { name: 'admin as a number', text: lines('admin: 9090') + POOL, path: 'admin', line: 1, col: 8, message: 'expected a mapping, got number 9090' },
  { name: 'admin port 0', text: lines('admin: { port: 0 }') + POOL, path: 'admin.port', line: 1, col: 16, message: 'expected an integer from 1 to 65535, got number 0' },
  { name: 'admin port as a string', text: lines('admin: { port: "9090" }') + POOL, path: 'admin.port', line: 1, message: 'got string "9090"' },
  {
    name: 'admin port the same as listen.port',
    text: lines('listen: { port: 8080 }', 'admin: { port: 8080 }') + POOL,
    path: 'admin.port',
    line: 2,
    col: 16,
    message: 'must differ from listen.port (8080): admin (127.0.0.1) and listen (127.0.0.1) may share an address',
  },
  { name: 'admin port the same as the default listen.port', text: lines('admin: { port: 8080 }') + POOL, path: 'admin.port', line: 1, message: 'must differ from listen.port (8080)' },
  { name: 'admin port the same as listen.port on a wildcard', text: lines('listen: { host: 0.0.0.0, port: 80 }', 'admin: { host: 127.0.0.2, port: 80 }') + POOL, path: 'admin.port', line: 2, message: 'must differ from listen.port (80)' },
  { name: 'admin host with a port', text: lines('admin: { host: "127.0.0.1:9090", port: 9090 }') + POOL, path: 'admin.host', line: 1, col: 16, message: 'without a port' },
  {
    name: 'admin on a public address without a token',
    text: lines('admin:', '  host: 0.0.0.0', '  port: 9090') + POOL,
    path: 'admin.token',
    line: 2,
    col: 9,
    message: 'is required when admin.host is not a loopback address (got 0.0.0.0)',
  },
  { name: 'admin on a host name without a token', text: lines('admin: { host: admin.example.com, port: 9090 }') + POOL, path: 'admin.token', line: 1, message: 'not a loopback address (got admin.example.com)' },
  { name: 'admin token too short', text: lines('admin:', '  port: 9090', '  token: secret') + POOL, path: 'admin.token', line: 3, col: 10, message: 'must be at least 16 characters long, got 6' },
  { name: 'admin token a number', text: lines('admin: { port: 9090, token: 12345678901234567 }') + POOL, path: 'admin.token', line: 1, message: 'expected a string of at least 16 characters, got number' },
  { name: 'admin token with a blank', text: lines('admin: { port: 9090, token: "0123456789 abcdef" }') + POOL, path: 'admin.token', line: 1, message: 'visible ASCII characters (no blanks)' },
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
        '      - ftp://a',
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

  it('reports pool settings even when the backends are missing or wrong', () => {
    const missing = problems(lines('pools:', '  web:', '    health: { rise: 0 }', '    retries: 11'));
    // "backends is required" points at the pool's mapping, which comes first in the file.
    expect(missing.map((p) => p.path)).toEqual(['pools.web.backends', 'pools.web.health.rise', 'pools.web.retries']);
    const wrong = problems(lines('pools:', '  web:', '    backends: [ftp://a]', '    passive: { failures: 0 }'));
    expect(wrong.map((p) => p.path)).toEqual(['pools.web.backends[0]', 'pools.web.passive.failures']);
  });

  it('reports every mistake in a health block', () => {
    const found = problems(pool('    health:', '      path: x', '      interval: 2', '      rise: 0', '      fall: 0', '      expect: ok'));
    expect(found.map((p) => `${p.line}:${p.col} ${p.path}`)).toEqual([
      '5:13 pools.web.health.path',
      '6:17 pools.web.health.interval',
      '7:13 pools.web.health.rise',
      '8:13 pools.web.health.fall',
      '9:15 pools.web.health.expect',
    ]);
  });

  it('reports every mistake in the balancing settings', () => {
    const found = problems(
      hashed('    hash_key: header:a b', '    hash_balance_factor: 0.9', '    ewma_decay: 5s', '    sticky:', '      cookie: a;b', '      ttl: 1.5s'),
    );
    expect(found.map((p) => `${p.line}:${p.col} ${p.path}`)).toEqual([
      '5:15 pools.web.hash_key',
      '6:26 pools.web.hash_balance_factor',
      '7:5 pools.web.ewma_decay',
      '9:15 pools.web.sticky.cookie',
      '10:12 pools.web.sticky.ttl',
    ]);
  });

  it('reports both the algorithm a key belongs to and a wrong value of it', () => {
    const found = problems(pool('    hash_key: "header:"', '    ewma_decay: 10'));
    expect(found.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`)).toEqual([
      '4:5 pools.web.hash_key: only used with algorithm: consistent-hash; this pool uses round-robin (the default)',
      '4:15 pools.web.hash_key: header needs a name after the colon, like header:x-user-id (got "header:")',
      '5:5 pools.web.ewma_decay: only used with algorithm: ewma; this pool uses round-robin (the default)',
      '5:17 pools.web.ewma_decay: needs a unit: ms, s, m or h (e.g. "10ms" or "10s")',
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
      listen: [{ host: '127.0.0.1', port: 8080, tls: null, redirectHttps: null, acmeWebroot: null }],
      workers: 4,
      log: { level: 'info', access: false, file: null },
      timeouts: { connectMs: 2000, responseMs: 30_000, idleMs: 60_000, queueMs: 1000, drainMs: 10_000, websocketIdleMs: 600_000 },
      limits: { maxBodyBytes: 10 * 1024 * 1024, maxConnectionsPerBackend: 0, websocketMessageBytes: 16 * 1024 * 1024 },
      forwardedFor: true,
      stateFile: null,
      resolver: null,
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
          hashKey: null,
          hashBalanceFactor: 0,
          ewmaDecayMs: 10_000,
          sticky: null,
          discover: null,
          tls: null,
          cache: false,
        },
      ],
      routes: [{ host: null, pathPrefix: '/', pool: 'web', cache: false }],
      admin: null,
      cache: null,
    });
  });

  const admins: Array<[string, string[], Config['admin']]> = [
    ['admin on loopback, no token', ['admin: { port: 9090 }'], { host: '127.0.0.1', port: 9090, token: null }],
    ['admin on ::1', ['admin: { host: "::1", port: 9090 }'], { host: '::1', port: 9090, token: null }],
    ['admin on localhost', ['admin: { host: LocalHost, port: 9090 }'], { host: 'localhost', port: 9090, token: null }],
    ['admin on 127.0.0.2', ['admin: { host: 127.0.0.2, port: 9090 }'], { host: '127.0.0.2', port: 9090, token: null }],
    ['admin with a token', ['admin:', '  port: 9090', '  token: 0123456789abcdef'], { host: '127.0.0.1', port: 9090, token: '0123456789abcdef' }],
    ['admin on every address with a token', ['admin: { host: 0.0.0.0, port: 9090, token: "s3cr3t-t0ken-0123" }'], { host: '0.0.0.0', port: 9090, token: 's3cr3t-t0ken-0123' }],
    ['admin on the listen port of another address', ['listen: { host: 127.0.0.1, port: 8080 }', 'admin: { host: 127.0.0.2, port: 8080 }'], { host: '127.0.0.2', port: 8080, token: null }],
  ];
  it.each(admins)('reads %s', (_what, adminLines, expected) => {
    expect(config(lines(...adminLines) + POOL).admin).toEqual(expected);
  });

  it('treats an empty section (everything commented out) as defaults', () => {
    const c = config(lines('log:', '  # level: debug', 'timeouts:', 'limits:', 'routes:') + POOL);
    expect(c.log).toEqual({ level: 'info', access: false, file: null });
    expect(c.timeouts.connectMs).toBe(2000);
    expect(c.routes).toEqual([{ host: null, pathPrefix: '/', pool: 'web', cache: false }]);
  });

  it('reads every setting', () => {
    const c = config(
      lines(
        'listen: { host: "::", port: 9000 }',
        'workers: 3',
        'log: { level: debug, access: true }',
        'timeouts: { connect: 500ms, response: 1.5s, idle: 2m, queue: 250ms, drain: 30s }',
        'limits: { max_body: 512kb, max_connections_per_backend: 64 }',
      ) + POOL,
    );
    expect(c.listen).toEqual([{ host: '::', port: 9000, tls: null, redirectHttps: null, acmeWebroot: null }]);
    expect(c.workers).toBe(3);
    expect(c.log).toEqual({ level: 'debug', access: true, file: null });
    expect(c.timeouts).toEqual({ connectMs: 500, responseMs: 1500, idleMs: 120_000, queueMs: 250, drainMs: 30_000, websocketIdleMs: 600_000 });
    expect(c.limits).toEqual({ maxBodyBytes: 512 * 1024, maxConnectionsPerBackend: 64, websocketMessageBytes: 16 * 1024 * 1024 });
  });

  it.each([
    ['absent', [], null],
    ['null', ['  file: null'], null],
    ['empty (file:)', ['  file:'], null],
    ['a new file in an existing directory', [`  file: ${join(LOG_DIR, 'corelb.log')}`], join(LOG_DIR, 'corelb.log')],
    ['an existing file', [`  file: ${A_FILE}`], A_FILE],
    ['a relative path, resolved against the working directory', ['  file: corelb-test.log'], resolve('corelb-test.log')],
  ])('reads log.file: %s', (_what, fileLines, expected) => {
    const c = config(lines('log:', '  level: info', ...fileLines) + POOL);
    expect(c.log.file).toBe(expected);
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
      ...POOL_SETTINGS,
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
      { host: 'api.example.com', pathPrefix: '/v1', pool: 'api', cache: false },
      { host: 'api.example.com', pathPrefix: '/', pool: 'api', cache: false },
      { host: null, pathPrefix: '/', pool: 'web', cache: false },
    ]);
  });

  // Each pool setting alone, written after POOL's lines: [what, lines, the pool's settings then].
  const settings: Array<[string, string[], Partial<PoolConfig>]> = [
    ['health: true (all defaults)', ['    health: true'], { health: HEALTH }],
    ['health: {} (all defaults)', ['    health: {}'], { health: HEALTH }],
    ['health: with everything commented out (all defaults)', ['    health:', '      # path: /status'], { health: HEALTH }],
    ['health: false (off)', ['    health: false'], { health: null }],
    [
      'every health setting',
      ['    health:', '      path: /status?full=1', '      interval: 5s', '      timeout: 5s', '      rise: 1', '      fall: 100', '      expect: 204'],
      { health: { path: '/status?full=1', intervalMs: 5000, timeoutMs: 5000, rise: 1, fall: 100, expectMin: 204, expectMax: 204 } },
    ],
    ['health expect as a range', ['    health: { expect: 200-299 }'], { health: { ...HEALTH, expectMin: 200, expectMax: 299 } }],
    ['health expect with blanks and quotes', ['    health: { expect: "100 - 599" }'], { health: { ...HEALTH, expectMin: 100, expectMax: 599 } }],
    ['health timeout defaults to a shorter interval', ['    health: { interval: 500ms }'], { health: { ...HEALTH, intervalMs: 500, timeoutMs: 500 } }],
    ['health timeout below the interval', ['    health: { interval: 1m, timeout: 1.5s }'], { health: { ...HEALTH, intervalMs: 60_000, timeoutMs: 1500 } }],
    ['passive: false (off)', ['    passive: false'], { passive: null }],
    ['passive: true (defaults)', ['    passive: true'], { passive: { failures: 5, windowMs: 10_000, ejectMs: 30_000 } }],
    ['passive: with everything commented out (defaults)', ['    passive:'], { passive: { failures: 5, windowMs: 10_000, ejectMs: 30_000 } }],
    ['every passive setting', ['    passive: { failures: 3, window: 30s, eject: 1m }'], { passive: { failures: 3, windowMs: 30_000, ejectMs: 60_000 } }],
    ['some passive settings', ['    passive:', '      failures: 1000000'], { passive: { failures: 1_000_000, windowMs: 10_000, ejectMs: 30_000 } }],
    ['slow_start: 0 (off)', ['    slow_start: 0'], { slowStartMs: 0 }],
    ['slow_start: false (off)', ['    slow_start: false'], { slowStartMs: 0 }],
    ['slow_start: 0s (off)', ['    slow_start: 0s'], { slowStartMs: 0 }],
    ['slow_start: 30s', ['    slow_start: 30s'], { slowStartMs: 30_000 }],
    ['slow_start: 1.5m', ['    slow_start: 1.5m'], { slowStartMs: 90_000 }],
    ['retries: 0 (never retry)', ['    retries: 0'], { retries: 0 }],
    ['retries: 10', ['    retries: 10'], { retries: 10 }],
    ['retry_budget: 0%', ['    retry_budget: 0%'], { retryBudget: 0 }],
    ['retry_budget: 100%', ['    retry_budget: 100%'], { retryBudget: 1 }],
    ['retry_budget: 12.5%', ['    retry_budget: 12.5%'], { retryBudget: 0.125 }],
    ['retry_budget: 33.3% (the nearest double, not 33.3 / 100)', ['    retry_budget: "33.3 %"'], { retryBudget: 0.333 }],
  ];
  it.each(settings)('reads %s', (_what, settingLines, expected) => {
    const c = config(pool(...settingLines));
    expect(c.pools[0]).toEqual({ name: 'web', algorithm: 'round-robin', backends: [{ url: 'http://a:80', host: 'a', port: 80, weight: 1 }], ...POOL_SETTINGS, ...expected });
  });

  // The balancing settings of each algorithm when none is given.
  const NO_HASH = { hashKey: null, hashBalanceFactor: 0, ewmaDecayMs: 10_000, sticky: null } as const;
  const HASH_DEFAULTS = { hashKey: { kind: 'path', name: '' }, hashBalanceFactor: 0, ewmaDecayMs: 10_000, sticky: null } as const;
  const algorithmDefaults: Array<[PoolConfig['algorithm'], Partial<PoolConfig>]> = [
    ['round-robin', NO_HASH],
    ['least-connections', NO_HASH],
    ['random', NO_HASH],
    ['p2c', NO_HASH],
    ['ewma', NO_HASH],
    ['consistent-hash', HASH_DEFAULTS],
  ];
  it.each(algorithmDefaults)('reads algorithm: %s with its defaults', (algorithm, expected) => {
    const c = config(pool(`    algorithm: ${algorithm}`));
    expect(c.pools[0]).toEqual({ name: 'web', algorithm, backends: [{ url: 'http://a:80', host: 'a', port: 80, weight: 1 }], ...POOL_SETTINGS, ...expected });
  });

  // Each balancing setting, on a pool of the algorithm it belongs to: [what, algorithm, lines, the pool's settings then].
  const balancing: Array<[string, PoolConfig['algorithm'], string[], Partial<PoolConfig>]> = [
    ['hash_key: path', 'consistent-hash', ['    hash_key: path'], { hashKey: { kind: 'path', name: '' } }],
    ['hash_key: ip', 'consistent-hash', ['    hash_key: ip'], { hashKey: { kind: 'ip', name: '' } }],
    ['hash_key: header:NAME (lower-cased)', 'consistent-hash', ['    hash_key: header:X-User-Id'], { hashKey: { kind: 'header', name: 'x-user-id' } }],
    ['hash_key: header:NAME with every token character', 'consistent-hash', ["    hash_key: \"header:a!#$%&'*+-.^_`|~9\""], { hashKey: { kind: 'header', name: "a!#$%&'*+-.^_`|~9" } }],
    ['hash_key with blanks around (trimmed)', 'consistent-hash', ['    hash_key: " header : X-Forwarded-For "'], { hashKey: { kind: 'header', name: 'x-forwarded-for' } }],
    ['hash_key: cookie:NAME (as written)', 'consistent-hash', ['    hash_key: cookie:SessionID'], { hashKey: { kind: 'cookie', name: 'SessionID' } }],
    ['hash_key: query:NAME (as written)', 'consistent-hash', ['    hash_key: query:userId'], { hashKey: { kind: 'query', name: 'userId' } }],
    ['hash_key: query:NAME with brackets', 'consistent-hash', ['    hash_key: query:ids[]'], { hashKey: { kind: 'query', name: 'ids[]' } }],
    ['hash_balance_factor: 0 (off)', 'consistent-hash', ['    hash_balance_factor: 0'], { hashBalanceFactor: 0 }],
    ['hash_balance_factor: 1', 'consistent-hash', ['    hash_balance_factor: 1'], { hashBalanceFactor: 1 }],
    ['hash_balance_factor: 1.25', 'consistent-hash', ['    hash_balance_factor: 1.25'], { hashBalanceFactor: 1.25 }],
    ['hash_balance_factor: 100', 'consistent-hash', ['    hash_balance_factor: 100'], { hashBalanceFactor: 100 }],
    [
      'every consistent-hash setting',
      'consistent-hash',
      ['    hash_key: header:x-user-id', '    hash_balance_factor: 1.5', '    sticky: { cookie: lb }'],
      { hashKey: { kind: 'header', name: 'x-user-id' }, hashBalanceFactor: 1.5, sticky: { cookie: 'lb', ttlMs: HOUR } },
    ],
    ['ewma_decay: 30s', 'ewma', ['    ewma_decay: 30s'], { ewmaDecayMs: 30_000 }],
    ['ewma_decay: 500ms', 'ewma', ['    ewma_decay: 500ms'], { ewmaDecayMs: 500 }],
    ['ewma_decay: 1.5m', 'ewma', ['    ewma_decay: 1.5m'], { ewmaDecayMs: 90_000 }],
    ['ewma_decay: 1h', 'ewma', ['    ewma_decay: 1h'], { ewmaDecayMs: HOUR }],
    ['sticky: false (off)', 'round-robin', ['    sticky: false'], { sticky: null }],
    ['sticky with the default ttl (1h)', 'round-robin', ['    sticky: { cookie: lb }'], { sticky: { cookie: 'lb', ttlMs: HOUR } }],
    ['sticky ttl: 0 (a session cookie)', 'least-connections', ['    sticky:', '      cookie: lb', '      ttl: 0'], { sticky: { cookie: 'lb', ttlMs: 0 } }],
    ['sticky ttl: 0s (a session cookie)', 'random', ['    sticky: { cookie: lb, ttl: 0s }'], { sticky: { cookie: 'lb', ttlMs: 0 } }],
    ['sticky ttl: 30m', 'p2c', ['    sticky: { cookie: __Host-lb, ttl: 30m }'], { sticky: { cookie: '__Host-lb', ttlMs: 1_800_000 } }],
    ['sticky ttl: 1.5h', 'ewma', ['    sticky: { cookie: LB_ID, ttl: 1.5h }'], { sticky: { cookie: 'LB_ID', ttlMs: 5_400_000 } }],
    ['sticky ttl: 9600h (400 days, the most)', 'round-robin', ['    sticky: { cookie: lb, ttl: 9600h }'], { sticky: { cookie: 'lb', ttlMs: 9600 * HOUR } }],
  ];
  it.each(balancing)('reads %s', (_what, algorithm, settingLines, expected) => {
    const c = config(pool(`    algorithm: ${algorithm}`, ...settingLines));
    const defaults = algorithm === 'consistent-hash' ? HASH_DEFAULTS : NO_HASH;
    expect(c.pools[0]).toEqual({ name: 'web', algorithm, backends: [{ url: 'http://a:80', host: 'a', port: 80, weight: 1 }], ...POOL_SETTINGS, ...defaults, ...expected });
  });

  it('reads balancing settings through YAML anchors and aliases', () => {
    const c = config(
      lines(
        'pools:',
        '  a: { algorithm: consistent-hash, backends: [http://x], hash_key: &k cookie:sid, sticky: &s { cookie: lb, ttl: 2h } }',
        '  b: { algorithm: consistent-hash, backends: [http://y], hash_key: *k, sticky: *s }',
        'routes: [{ pool: a }, { path_prefix: /b, pool: b }]',
      ),
    );
    for (const p of c.pools) {
      expect(p.hashKey).toEqual({ kind: 'cookie', name: 'sid' });
      expect(p.sticky).toEqual({ cookie: 'lb', ttlMs: 2 * HOUR });
    }
  });

  it('reads pool settings through YAML anchors and aliases', () => {
    const c = config(
      lines(
        'pools:',
        '  a: { backends: [http://x], health: &h { path: /up, rise: 5 }, passive: &p false, retries: &r 0 }',
        '  b: { backends: [http://y], health: *h, passive: *p, retries: *r }',
        'routes: [{ pool: a }, { path_prefix: /b, pool: b }]',
      ),
    );
    for (const p of c.pools) {
      expect(p.health).toEqual({ ...HEALTH, path: '/up', rise: 5 });
      expect(p.passive).toBeNull();
      expect(p.retries).toBe(0);
    }
  });

  it('reads limits.websocket_message and timeouts.websocket_idle, and reports values uWS cannot take with their line', () => {
    const c = config(lines('limits: { websocket_message: 1mb }', 'timeouts: { websocket_idle: 0 }') + POOL);
    expect(c.limits.websocketMessageBytes).toBe(1024 * 1024);
    expect(c.timeouts.websocketIdleMs).toBe(0);
    expect(config(lines('timeouts: { websocket_idle: 90s }') + POOL).timeouts.websocketIdleMs).toBe(90_000);
    const r = parseConfig(lines('limits: { websocket_message: 10b }', 'timeouts: { websocket_idle: 1h }') + POOL, 'test.yaml');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => [p.path, p.line])).toEqual([
      ['limits.websocket_message', 1],
      ['timeouts.websocket_idle', 2],
    ]);
    expect(r.problems[1]!.message).toMatch(/8s to 16m/);
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
    expect(Object.isFrozen(c.listen[0])).toBe(true);
    expect(Object.isFrozen(c.pools)).toBe(true);
    expect(Object.isFrozen(c.pools[0])).toBe(true);
    expect(Object.isFrozen(c.pools[0]?.backends[0])).toBe(true);
    expect(Object.isFrozen(c.routes[0])).toBe(true);
    expect(() => {
      (c.listen[0] as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it.each(['config/corelb.yaml', 'config/demo.yaml'])('loads %s', (file) => {
    const r = loadConfigFile(join(root, file));
    expect(r.ok ? [] : r.problems.map(formatProblem)).toEqual([]);
  });

  it('forwarded_for defaults to true and can be turned off', () => {
    const on = parseConfig(POOL, 'a.yaml');
    const off = parseConfig(lines('forwarded_for: false') + POOL, 'b.yaml');
    expect(on.ok && on.config.forwardedFor).toBe(true);
    expect(off.ok && off.config.forwardedFor).toBe(false);
  });

  it('config/demo.yaml is the demo: one round-robin pool of three local backends', () => {
    const r = loadConfigFile(join(root, 'config/demo.yaml'));
    if (!r.ok) throw new Error('demo.yaml does not load');
    expect(r.config.listen).toEqual([{ host: '127.0.0.1', port: 8080, tls: null, redirectHttps: null, acmeWebroot: null }]);
    expect(r.config.log.access).toBe(true);
    expect(r.config.pools).toEqual([
      {
        name: 'demo',
        algorithm: 'round-robin',
        backends: [3001, 3002, 3003].map((port) => ({ url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port, weight: 1 })),
        ...POOL_SETTINGS,
      },
    ]);
  });

  it('config/corelb.yaml uses three pools and routes to each', () => {
    const r = loadConfigFile(join(root, 'config/corelb.yaml'));
    if (!r.ok) throw new Error('corelb.yaml does not load');
    expect(r.config.pools.map((p) => p.name)).toEqual(['web', 'api', 'users']);
    expect(new Set(r.config.routes.map((route) => route.pool))).toEqual(new Set(['web', 'api', 'users']));
  });

  it('config/corelb.yaml spells out every pool setting and timeout (so `corelb check` reads them)', () => {
    const r = loadConfigFile(join(root, 'config/corelb.yaml'));
    if (!r.ok) throw new Error('corelb.yaml does not load');
    expect(r.config.timeouts).toEqual({ connectMs: 2000, responseMs: 30_000, idleMs: 60_000, queueMs: 1000, drainMs: 10_000, websocketIdleMs: 600_000 });
    const [web, api] = r.config.pools;
    expect(web).toMatchObject({ health: HEALTH, passive: POOL_SETTINGS.passive, slowStartMs: 30_000, retries: 2, retryBudget: 0.2 });
    expect(api?.health).toEqual(HEALTH);
  });

  it('config/corelb.yaml shows sticky sessions and a bounded consistent-hash pool', () => {
    const r = loadConfigFile(join(root, 'config/corelb.yaml'));
    if (!r.ok) throw new Error('corelb.yaml does not load');
    const [web, , users] = r.config.pools;
    expect(web?.sticky).toEqual({ cookie: 'corelb_web', ttlMs: HOUR });
    expect(users).toMatchObject({ algorithm: 'consistent-hash', hashKey: { kind: 'header', name: 'x-user-id' }, hashBalanceFactor: 1.25, sticky: null });
  });

  it('config/corelb.yaml documents every admin key, with the admin server on loopback', () => {
    const r = loadConfigFile(join(root, 'config/corelb.yaml'));
    if (!r.ok) throw new Error('corelb.yaml does not load');
    expect(r.config.admin).toEqual({ host: '127.0.0.1', port: 9090, token: null });
    const text = readFileSync(join(root, 'config/corelb.yaml'), 'utf8');
    for (const key of ADMIN_KEYS) expect(text).toMatch(new RegExp(`^  #? ?${key}:`, 'm'));
  });

  it('config/corelb.yaml documents every pool key and algorithm', () => {
    const text = readFileSync(join(root, 'config/corelb.yaml'), 'utf8');
    for (const key of POOL_KEYS) expect(text).toMatch(new RegExp(`^ +#? ?${key}:`, 'm'));
    for (const algorithm of ALGORITHMS) expect(text).toMatch(new RegExp(`^ +# +${algorithm} `, 'm'));
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
