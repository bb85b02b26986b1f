// The `cache` section and `cache: true` on pools and routes: defaults, units, located errors,
// and what a reload keeps (the store's size, and no store where none was made at start).
import { describe, expect, it } from 'vitest';
import { keepRestartOnly } from '../../../src/config/restart-only.js';
import { config, lines, problems } from '../../helpers/config-text.js';

const POOL = lines('pools:', '  web:', '    backends: [http://127.0.0.1:3001]', '    cache: true');

describe('cache config', () => {
  it('reads the section, its units and the pool switch', () => {
    const c = config(lines('cache:', '  size: 64mb', '  max_object: 1mb', '  default_ttl: 30s', '  stale_if_error: 1h', '  stale_while_revalidate: 10s') + POOL);
    expect(c.cache).toEqual({ sizeBytes: 64 * 1024 * 1024, maxObjectBytes: 1024 * 1024, defaultTtlMs: 30_000, staleIfErrorMs: 3_600_000, staleWhileRevalidateMs: 10_000 });
    expect(c.pools[0]!.cache).toBe(true);
  });

  it('an empty section is every default; absent is no store', () => {
    expect(config(lines('cache:') + POOL).cache).toEqual({ sizeBytes: 256 * 1024 * 1024, maxObjectBytes: 8 * 1024 * 1024, defaultTtlMs: 0, staleIfErrorMs: 0, staleWhileRevalidateMs: 0 });
    expect(config(lines('pools:', '  web: { backends: [http://127.0.0.1:3001] }')).cache).toBeNull();
  });

  it('cache: true on a route', () => {
    const c = config(
      lines('cache: { size: 1mb }', 'pools:', '  web: { backends: [http://127.0.0.1:3001] }', 'routes:', '  - { path_prefix: /static, pool: web, cache: true }', '  - { path_prefix: /, pool: web }'),
    );
    expect(c.routes.map((r) => r.cache)).toEqual([true, false]);
    expect(c.pools[0]!.cache).toBe(false);
  });

  it.each<[string, string, string, number, string]>([
    ['a pool cache without the section', POOL, 'pools.web.cache', 4, 'needs the top-level cache section'],
    ['a size without a unit that is too small', lines('cache: { size: 100 }') + POOL, 'cache.size', 1, 'must be from 65536 bytes to 1gb'],
    ['a size over 1gb', lines('cache: { size: 2gb }') + POOL, 'cache.size', 1, 'must be from 65536 bytes to 1gb'],
    ['max_object over size', lines('cache:', '  size: 1mb', '  max_object: 2mb') + POOL, 'cache.max_object', 3, 'must not be larger than cache.size'],
    ['a bad duration', lines('cache:', '  default_ttl: 10') + POOL, 'cache.default_ttl', 2, 'needs a unit'],
    ['an unknown key', lines('cache:', '  sise: 1mb') + POOL, 'cache.sise', 2, 'unknown'],
    ['a pool cache that is not a boolean', lines('cache:') + lines('pools:', '  web:', '    backends: [http://127.0.0.1:3001]', '    cache: yes please'), 'pools.web.cache', 5, 'expected'],
  ])('%s is located', (_what, text, path, line, message) => {
    const p = problems(text).find((x) => x.path === path);
    expect(p, JSON.stringify(problems(text))).toBeDefined();
    expect(p!.line).toBe(line);
    expect(p!.message).toContain(message);
  });

  it('a reload keeps the store: its size, and no store where none was made', () => {
    const running = config(lines('cache: { size: 1mb, default_ttl: 5s }') + POOL);
    const bigger = config(lines('cache: { size: 2mb, default_ttl: 9s }') + POOL);
    const r = keepRestartOnly(bigger, running);
    expect(r.kept).toEqual(['cache.size']);
    expect(r.config.cache).toEqual({ ...bigger.cache, sizeBytes: 1024 * 1024 });
    const none = config(lines('pools:', '  web: { backends: [http://127.0.0.1:3001] }'));
    const added = keepRestartOnly(running, none);
    expect(added.kept).toEqual(['cache']);
    expect(added.config.cache).toBeNull();
    expect(keepRestartOnly(config(lines('cache: { size: 1mb, default_ttl: 7s }') + POOL), running).kept).toEqual([]);
  });
});
