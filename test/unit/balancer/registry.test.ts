// The registry is the one list of algorithms: what the config and the worker know of them derives
// from the specs, so a new algorithm is its file and its registry entry.
import { describe, expect, it } from 'vitest';
import { ALGORITHM_OPTION_KEYS, ALGORITHM_SPECS, ALGORITHMS, DEFAULT_ALGORITHM, algorithmSpec } from '../../../src/balancer/registry.js';
import { parseConfig } from '../../../src/config/index.js';
import { POOL_KEYS } from '../../../src/config/pools.js';

/** The pool of a one-pool config with `algorithm` and `settings` lines (or its problems). */
function pool(algorithm: string, ...settings: string[]) {
  const text = ['pools:', '  p:', `    algorithm: ${algorithm}`, ...settings, '    backends: [http://a, http://b]', ''].join('\n');
  return parseConfig(text, 'registry.yaml');
}

describe('algorithm registry', () => {
  it('names the algorithms in its order, the first the default, each once', () => {
    expect(ALGORITHMS).toEqual(ALGORITHM_SPECS.map((s) => s.name));
    expect(new Set(ALGORITHMS).size).toBe(ALGORITHMS.length);
    expect(DEFAULT_ALGORITHM).toBe(ALGORITHMS[0]);
    for (const name of ALGORITHMS) expect(algorithmSpec(name).name).toBe(name);
  });

  it('allows every option key of every algorithm on a pool, each owned by one algorithm', () => {
    for (const key of ALGORITHM_OPTION_KEYS) expect(POOL_KEYS).toContain(key);
    expect(new Set(ALGORITHM_OPTION_KEYS).size).toBe(ALGORITHM_OPTION_KEYS.length);
    expect(ALGORITHM_OPTION_KEYS).toHaveLength(ALGORITHM_SPECS.flatMap((s) => s.optionKeys).length);
  });

  describe.each(ALGORITHM_SPECS.map((s) => s.name))('%s', (name) => {
    it('gives its pools every other algorithm\'s settings as that algorithm\'s unused values', () => {
      const r = pool(name);
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      const settings = r.config.pools[0]! as unknown as Record<string, unknown>;
      for (const other of ALGORITHM_SPECS) {
        if (other.name === name) continue;
        for (const [field, value] of Object.entries(other.unused)) expect(settings[field], `${other.name}'s ${field}`).toEqual(value);
      }
    });
  });

  it.each(ALGORITHM_SPECS.flatMap((s) => s.optionKeys.map((key) => [s.name, key] as const)))("reports %s's key %s on a pool of another algorithm", (name, key) => {
    const other = ALGORITHMS.find((a) => a !== name)!;
    const r = pool(other, `    ${key}: x`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.message)).toContain(`only used with algorithm: ${name}; this pool uses ${other}`);
  });

  it('asks for the client address only when a key is the address', () => {
    const spec = algorithmSpec('consistent-hash');
    const needs = (key: string) => {
      const r = pool('consistent-hash', `    hash_key: ${key}`);
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      return spec.needs(r.config.pools[0]!);
    };
    expect(needs('ip')).toEqual({ key: true, clientAddress: true });
    expect(needs('path')).toEqual({ key: true, clientAddress: false });
    const plain = pool('round-robin');
    if (!plain.ok) throw new Error(JSON.stringify(plain.problems));
    expect(algorithmSpec('round-robin').needs(plain.config.pools[0]!)).toEqual({ key: false, clientAddress: false });
  });
});
