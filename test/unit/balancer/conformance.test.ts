// One conformance suite that every balancing algorithm runs (Hono's routers are the model).
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { ewmaMicros, ewmaStamp } from '../../../src/balancer/ewma.js';
import { ALGORITHMS, balancers, poolLayout } from '../../../src/balancer/registry.js';
import { parseConfig } from '../../../src/config/index.js';
import { NONE, type PickContext } from '../../../src/balancer/types.js';
import { BackendState, SharedState, WEIGHT_SCALE } from '../../../src/shared/layout.js';

/** Heap growth over `n` calls of `fn`, after a warm-up; see the semi-space setting in vitest.config.ts. */
function heapGrowth(fn: () => unknown, n: number): number {
  // Warm up and let the JIT settle: at least 10,000 calls and 100 ms, since V8 optimises on a
  // background thread, which a busy machine can hold back past any fixed count of calls (until
  // then the function's numbers are boxed: seen at 12-16 bytes a call).
  const settled = performance.now() + 100;
  for (let k = 0; k < 10_000 || performance.now() < settled; k++) fn();
  if (globalThis.gc === undefined) throw new Error('the allocation check needs --expose-gc (test/vitest.config.ts)');
  // Measured twice, the smaller kept: optimised code can still arrive during the first
  // measurement; a function that allocates does so in both.
  let least = Infinity;
  for (let attempt = 0; attempt < 2; attempt++) {
    globalThis.gc();
    // Garbage is only seen while no scavenge runs: there must be room for far more than n calls'
    // worth of it, or a check could pass because its garbage was collected mid-measurement.
    const room = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_available_size ?? 0;
    expect(room, 'free young generation (--min-semi-space-size in test/vitest.config.ts)').toBeGreaterThan(16 * 1024 * 1024);
    const before = process.memoryUsage().heapUsed;
    for (let k = 0; k < n; k++) fn();
    least = Math.min(least, process.memoryUsage().heapUsed - before);
  }
  return least;
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

/** `extra`: options only some algorithms read (ewma's injectable clock). */
function setup(algorithm: (typeof ALGORITHMS)[number], weights: number[], extra: { now?: () => number; seed?: number } = {}) {
  const backends = weights.map((weight, k) => ({ url: `http://127.0.0.1:${20000 + k}`, weight })); // as poolConfig names them
  const state = SharedState.create({ pools: [{ weights: [7] }, poolLayout(algorithm, backends)] }); // pool 1 is tested; pool 0 shifts indexes
  const balancer = balancers[algorithm](state, 1, { pool: poolConfig(algorithm, weights), seed: 12345, ...extra });
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

/** Picks (released at once) per backend of the pool, over `n` picks. */
function shares(pickOnce: () => number, first: number, count: number, n: number): number[] {
  const counts = new Array<number>(count).fill(0);
  for (let k = 0; k < n; k++) counts[pickOnce() - first]!++;
  return counts.map((c) => c / n);
}

/** Hold `n` in-flight slots on backend `i` (load from requests that have not finished). */
function hold(state: SharedState, i: number, n: number): void {
  for (let k = 0; k < n; k++) state.tryAcquireInflight(i, 0);
}

describe.each(['random', 'p2c', 'ewma'] as const)('randomised specifics: %s', (algorithm) => {
  it('thins a slow-starting backend to about its effective share', () => {
    const { state, first, pickOnce } = setup(algorithm, [1, 1]);
    state.setState(first, BackendState.SlowStart);
    state.setEffectiveWeight(first, 100); // 10% of weight 1
    const [slow] = shares(pickOnce, first, 2, 10_000);
    expect(slow).toBeGreaterThan(0.02);
    expect(slow).toBeLessThan(0.15);
  });

  it('draws differently per seed (workers are not in lock-step)', () => {
    const a = setup(algorithm, [1, 1, 1, 1], { seed: 1 });
    const b = setup(algorithm, [1, 1, 1, 1], { seed: 2 });
    const seqA = Array.from({ length: 32 }, () => a.pickOnce() - a.first).join('');
    const seqB = Array.from({ length: 32 }, () => b.pickOnce() - b.first).join('');
    expect(seqA).not.toBe(seqB);
  });
});

describe('p2c specifics', () => {
  it('prefers the less loaded of two', () => {
    const { state, first, pickOnce } = setup('p2c', [1, 1, 1]);
    hold(state, first, 4);
    hold(state, first + 1, 2);
    // pairs {0,1} -> 1, {0,2} -> 2, {1,2} -> 2: the busiest never wins a comparison
    const [b0, b1, b2] = shares(pickOnce, first, 3, 6_000);
    expect(b0).toBe(0);
    expect(Math.abs(b1! - 1 / 3)).toBeLessThan(0.05);
    expect(Math.abs(b2! - 2 / 3)).toBeLessThan(0.05);
  });

  it('compares in-flight requests per weight', () => {
    const { state, first, pickOnce } = setup('p2c', [1, 3]);
    hold(state, first, 1);
    hold(state, first + 1, 2); // 1/1 vs 2/3: the heavier one is less loaded
    expect(shares(pickOnce, first, 2, 1_000)).toEqual([0, 1]);
    hold(state, first + 1, 2); // 1/1 vs 4/3
    expect(shares(pickOnce, first, 2, 1_000)).toEqual([1, 0]);
  });

  it('takes the only available backend however loaded', () => {
    const { state, first, pickOnce } = setup('p2c', [1, 1]);
    state.setState(first, BackendState.Down);
    hold(state, first + 1, 50);
    expect(pickOnce()).toBe(first + 1);
  });
});

describe('ewma specifics', () => {
  const T0 = 1_700_000_000_000; // low 32 bits wrap somewhere in between: stamps are unsigned differences
  function clocked(weights: number[]) {
    const clock = { t: T0 };
    return { clock, ...setup('ewma', weights, { now: () => clock.t }) };
  }

  it('a backend 50x slower than the others gets under 15% of 10,000 picks', () => {
    const { balancer, first, pickOnce } = clocked([1, 1, 1]);
    balancer.observe(first, 50);
    balancer.observe(first + 1, 1);
    balancer.observe(first + 2, 1);
    const [slow] = shares(pickOnce, first, 3, 10_000);
    expect(slow).toBeLessThan(0.15);
  });

  it('probes a slow backend again as time passes, and gives it its share back once it recovered', () => {
    const { clock, balancer, first, pickOnce } = clocked([1, 1, 1]);
    balancer.observe(first, 50);
    balancer.observe(first + 1, 1);
    balancer.observe(first + 2, 1);
    // Every backend now answers in 1 ms; 10 ms pass between requests (100 s in all), and every
    // response is observed, as the proxy does. Only picked backends learn that.
    const picks: number[] = [];
    for (let n = 0; n < 10_000; n++) {
      clock.t += 10;
      const i = pickOnce();
      balancer.observe(i, 1);
      picks.push(i - first);
    }
    const back = picks.indexOf(0);
    expect(back).toBeGreaterThan(0); // avoided at first...
    expect(back).toBeLessThan(6_000); // ...but probed within 60 s (50 ms decays below 1 ms after ~39 s at tau 10 s)
    const tail = picks.slice(-3_000);
    expect(tail.filter((k) => k === 0).length / tail.length).toBeGreaterThan(0.2);
  });

  it('peak rule: one slow sample raises the EWMA at once; a fast one lowers it by 1 - exp(-dt/tau)', () => {
    const { clock, state, balancer, first } = clocked([1, 1]);
    balancer.observe(first, 1);
    expect(ewmaMicros(state, first)).toBe(1_000); // first sample: taken as is
    clock.t += 1_000;
    balancer.observe(first, 100);
    expect(ewmaMicros(state, first)).toBe(100_000);
    clock.t += 1_000; // tau = 10 s: w = exp(-0.1)
    balancer.observe(first, 1);
    const w = Math.exp(-0.1);
    expect(ewmaMicros(state, first)).toBe(Math.round(100_000 * w + 1_000 * (1 - w)));
    expect(ewmaStamp(state, first)).toBe((clock.t >>> 0));
  });

  it('cost grows with in-flight requests per weight', () => {
    const { state, balancer, first, pickOnce } = clocked([1, 2]);
    balancer.observe(first, 1);
    balancer.observe(first + 1, 1);
    hold(state, first, 1); // costs 1 ms * (1 + 1/1) vs 1 ms * (1 + 0/2)
    expect(shares(pickOnce, first, 2, 1_000)).toEqual([0, 1]);
    hold(state, first + 1, 2); // 2 vs 1 + 2/2: a tie, so the weighted first draw decides
    const [b0] = shares(pickOnce, first, 2, 3_000);
    expect(Math.abs(b0! - 1 / 3)).toBeLessThan(0.01);
    hold(state, first + 1, 2); // 2 vs 1 + 4/2 = 3
    expect(shares(pickOnce, first, 2, 1_000)).toEqual([1, 0]);
  });

  it('keeps weighted shares between idle backends of equal latency (none starves)', () => {
    const { clock, state, balancer, first, ctx } = clocked([5, 3, 2]);
    const counts = [0, 0, 0];
    let jitter = 0;
    for (let n = 0; n < 20_000; n++) {
      clock.t += 1;
      const i = balancer.pick(ctx);
      state.releaseInflight(i);
      jitter = (jitter * 7 + 3) % 11; // latencies 1.00..1.10 ms: noise, not a difference
      balancer.observe(i, 1 + jitter / 100);
      if (n >= 10_000) counts[i - first]!++;
    }
    [0.5, 0.3, 0.2].forEach((share, k) => expect(Math.abs(counts[k]! / 10_000 - share)).toBeLessThan(0.02));
  });

  it('tries a never-measured backend while it is idle, one request at a time', () => {
    const { state, balancer, first, pickOnce } = clocked([1, 1, 1]);
    balancer.observe(first, 1);
    balancer.observe(first + 1, 1);
    // idle and unmeasured: costs 0, wins every comparison it is in (2 pairs of 3)
    expect(Math.abs(shares(pickOnce, first, 3, 3_000)[2]! - 2 / 3)).toBeLessThan(0.05);
    hold(state, first + 2, 1); // its first request has not answered yet: it loses every comparison
    expect(shares(pickOnce, first, 3, 3_000)[2]).toBe(0);
  });

  it('reads a stamp a few ms ahead (another thread\'s clock) as no time passed', () => {
    const { clock, state, balancer, first } = clocked([1, 1]);
    balancer.observe(first, 50);
    clock.t -= 3;
    balancer.observe(first, 1); // w = 1: the fast sample has no weight yet, and 50 ms is not decayed away
    expect(ewmaMicros(state, first)).toBe(50_000);
  });

  it('ignores samples it cannot use', () => {
    const { state, balancer, first } = clocked([1, 1]);
    balancer.observe(NONE, 5);
    balancer.observe(first + 5, 5);
    balancer.observe(first, Number.NaN);
    balancer.observe(first, -1);
    expect(ewmaMicros(state, first)).toBe(0);
    balancer.observe(first, 1e12); // clamped to the word, not wrapped
    expect(ewmaMicros(state, first)).toBe(0x7fffffff);
  });

  it('observe does not allocate, and neither does a pick over measured backends', () => {
    const { balancer, first, pickOnce } = setup('ewma', [3, 2, 1]); // the real (coarse) clock
    let n = 0;
    const observe = () => balancer.observe(first + (n++ % 3), 0.5 + (n & 7));
    expect(heapGrowth(observe, 100_000)).toBeLessThan(1024 * 1024);
    expect(heapGrowth(pickOnce, 100_000)).toBeLessThan(1024 * 1024);
  });
});
