// One conformance suite that every balancing algorithm runs (Hono's routers are the model).
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { balancers, poolLayout } from '../../../src/balancer/registry.js';
import { parseConfig } from '../../../src/config/index.js';
import { NONE, type PickContext } from '../../../src/balancer/types.js';
import { BackendState, SharedState, WEIGHT_SCALE } from '../../../src/shared/layout.js';
import { ALGORITHMS } from '../../../src/config/types.js';

/** Heap growth over `n` calls of `fn`, after a warm-up; see the semi-space setting in vitest.config.ts. */
function heapGrowth(fn: () => unknown, n: number): number {
  for (let k = 0; k < 10_000; k++) fn(); // warm up and let the JIT settle
  if (globalThis.gc === undefined) throw new Error('the allocation check needs --expose-gc (test/vitest.config.ts)');
  globalThis.gc();
  // Garbage is only seen while no scavenge runs: there must be room for far more than n calls'
  // worth of it, or a check could pass because its garbage was collected mid-measurement.
  const room = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_available_size ?? 0;
  expect(room, 'free young generation (--min-semi-space-size in test/vitest.config.ts)').toBeGreaterThan(16 * 1024 * 1024);
  const before = process.memoryUsage().heapUsed;
  for (let k = 0; k < n; k++) fn();
  return process.memoryUsage().heapUsed - before;
}

describe('allocation check', () => {
  it('detects a function that allocates 16 bytes per call', () => {
    const sink: unknown[] = [null];
    expect(heapGrowth(() => (sink[0] = { a: 1 }), 100_000)).toBeGreaterThan(1024 * 1024);
  });
});

/** A validated pool config for `algorithm` (the options some algorithms read). */
function poolConfig(algorithm: string, weights: number[]) {
  const backends = weights.map((w, k) => `      - { url: "http://127.0.0.1:${20000 + k}", weight: ${w} }`).join('\n');
  const r = parseConfig(`workers: 1\npools:\n  p:\n    algorithm: ${algorithm}\n    backends:\n${backends}\n`, 'conformance.yaml');
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config.pools[0]!;
}

function setup(algorithm: (typeof ALGORITHMS)[number], weights: number[]) {
  const backends = weights.map((weight, k) => ({ url: `http://127.0.0.1:${20000 + k}`, weight })); // as poolConfig names them
  const state = SharedState.create({ pools: [{ weights: [7] }, poolLayout(algorithm, backends)] }); // pool 1 is tested; pool 0 shifts indexes
  const balancer = balancers[algorithm](state, 1, { pool: poolConfig(algorithm, weights), seed: 12345 });
  const first = state.poolFirstBackend(1);
  const ctx: PickContext = { avoid: NONE, maxInflight: 0, hash: -1 };
  /** Pick and release at once, as a request that finishes before the next starts. */
  const pickOnce = (): number => {
    const i = balancer.pick(ctx);
    if (i !== NONE) state.releaseInflight(i);
    return i;
  };
  return { state, balancer, first, ctx, pickOnce };
}

describe.each(ALGORITHMS)('balancer conformance: %s', (algorithm) => {
  it('picks only backends of its own pool', () => {
    const { first, pickOnce } = setup(algorithm, [1, 1, 1]);
    for (let n = 0; n < 100; n++) {
      const i = pickOnce();
      expect(i).toBeGreaterThanOrEqual(first);
      expect(i).toBeLessThan(first + 3);
    }
  });

  it('never returns a down or draining backend', () => {
    const { state, first, pickOnce } = setup(algorithm, [1, 1, 1]);
    state.setState(first, BackendState.Down);
    state.setState(first + 2, BackendState.Draining);
    for (let n = 0; n < 100; n++) expect(pickOnce()).toBe(first + 1);
  });

  it('returns none when no backend is available', () => {
    const { state, first, pickOnce } = setup(algorithm, [1, 2]);
    state.setState(first, BackendState.Down);
    state.setState(first + 1, BackendState.Down);
    expect(pickOnce()).toBe(NONE);
  });

  it('returns none when every backend is at its in-flight limit, and holds one slot per pick', () => {
    const { state, balancer, ctx } = setup(algorithm, [1, 1]);
    ctx.maxInflight = 2;
    const held = [balancer.pick(ctx), balancer.pick(ctx), balancer.pick(ctx), balancer.pick(ctx)];
    expect(held).not.toContain(NONE);
    expect(balancer.pick(ctx)).toBe(NONE);
    state.releaseInflight(held[0]!);
    expect(balancer.pick(ctx)).toBe(held[0]);
  });

  it('honours the avoid hint while another backend is available', () => {
    const { first, ctx, pickOnce, state } = setup(algorithm, [1, 1, 1]);
    ctx.avoid = first + 1;
    for (let n = 0; n < 60; n++) expect(pickOnce()).not.toBe(first + 1);
    state.setState(first, BackendState.Down);
    state.setState(first + 2, BackendState.Down);
    expect(pickOnce()).toBe(first + 1); // the avoided one is better than none
  });

  it('respects weights within 1% over 10,000 picks', () => {
    const weights = [5, 3, 2];
    const { first, pickOnce } = setup(algorithm, weights);
    const counts = [0, 0, 0];
    for (let n = 0; n < 10_000; n++) counts[pickOnce() - first]!++;
    weights.forEach((w, k) => expect(Math.abs(counts[k]! / 10_000 - w / 10)).toBeLessThan(0.01));
  });

  // Slow start: the middle backend of three ramps up. Picks are held, not released, as under real
  // concurrency: least-connections weighs in-flight requests by effective weight (with every slot
  // free it would only follow the schedule), and round-robin thins the backend's turns.
  it.each([
    [0.1, 0.01, 0.1], // 10% of its weight: clearly less than its third, but some
    [1, 1 / 3 - 0.01, 1 / 3 + 0.01], // 100%: its full share within 1%
  ])('a slow-starting backend at %d of its weight gets between %d and %d of 10,000 picks', (ramp, low, high) => {
    const weights = [2, 2, 2];
    const { state, balancer, first, ctx } = setup(algorithm, weights);
    state.setState(first + 1, BackendState.SlowStart);
    state.setEffectiveWeight(first + 1, Math.round(weights[1]! * WEIGHT_SCALE * ramp));
    const counts = [0, 0, 0];
    for (let n = 0; n < 10_000; n++) counts[balancer.pick(ctx) - first]!++; // held: never released
    const share = counts[1]! / 10_000;
    expect(share).toBeGreaterThan(low);
    expect(share).toBeLessThan(high);
    expect(Math.abs(counts[0]! - counts[2]!) / 10_000).toBeLessThan(0.01); // the others split the rest evenly
    expect(counts[0]! + counts[1]! + counts[2]!).toBe(10_000);
  });

  it('does not allocate per pick', () => {
    const { pickOnce } = setup(algorithm, [3, 2, 1]);
    // 100,000 allocations of even 16 bytes would be 1.6 MB (the control case above)
    expect(heapGrowth(pickOnce, 100_000)).toBeLessThan(1024 * 1024);
  });
});

describe('round-robin specifics', () => {
  it('interleaves weights 5:1:1 as a a b a c a a', () => {
    const { first, pickOnce } = setup('round-robin', [5, 1, 1]);
    const seq = Array.from({ length: 14 }, () => 'abc'[pickOnce() - first]).join('');
    expect(seq).toBe('aabacaa'.repeat(2));
  });
  it('spreads a down backend\'s turns over the others by weight', () => {
    const { state, first, pickOnce } = setup('round-robin', [2, 1, 1]);
    state.setState(first, BackendState.Down);
    const counts = [0, 0, 0];
    for (let n = 0; n < 1000; n++) counts[pickOnce() - first]!++;
    expect(counts).toEqual([0, 500, 500]);
  });
});

describe('least-connections specifics', () => {
  it('prefers the backend with the fewest in-flight requests per weight', () => {
    const { state, balancer, first, ctx } = setup('least-connections', [1, 1, 2]);
    // hold: b0 has 2, b1 has 1, b2 (weight 2) has 2 -> loads 2, 1, 1: tie between b1 and b2
    for (const [i, n] of [[first, 2], [first + 1, 1], [first + 2, 2]] as const) for (let k = 0; k < n; k++) state.tryAcquireInflight(i, 0);
    const picks = new Set<number>();
    for (let n = 0; n < 20; n++) {
      const i = balancer.pick(ctx);
      picks.add(i);
      state.releaseInflight(i);
    }
    expect([...picks].sort()).toEqual([first + 1, first + 2]); // ties broken round-robin, never b0
  });
});
