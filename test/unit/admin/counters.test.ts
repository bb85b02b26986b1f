// Counters across generations (src/admin/counters.ts): a replaced buffer is still read for
// timeouts.drain + 5 s (requests in flight finish and count there), then folded into totals by
// pool + backend URL, pool and worker; counters never go down, gauges come from the live buffer.
import { describe, expect, it } from 'vitest';
import { Counters, FOLD_AFTER_DRAIN_MS } from '../../../src/admin/counters.js';
import { formatProblem, parseConfig, type Config } from '../../../src/config/index.js';
import { layoutFor } from '../../../src/primary/data-plane.js';
import { FailureKind, PoolEvent } from '../../../src/shared/layout.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;
const A = 'http://127.0.0.1:3001';
const B = 'http://127.0.0.1:3002';
const C = 'http://127.0.0.1:3003';

function config(text: string): Config {
  const r = parseConfig(text, 'test.yaml', { availableParallelism: 2 });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

const pools = (...urls: string[]) => config(lines('workers: 2', 'timeouts: { drain: 2s }', 'pools:', `  web: { backends: [${urls.join(', ')}] }`));
const HOLD = 2000 + FOLD_AFTER_DRAIN_MS;

function answered(c: Counters, now: number, url: string): number {
  const b = c.snapshot(now).pools[0]!.backends.find((x) => x.url === url);
  return b === undefined ? NaN : b.status[1]!;
}

describe('Counters', () => {
  it('adds the replaced generation until it is folded, and never goes down', () => {
    const c1 = pools(A, B);
    const s1 = layoutFor(c1, 1);
    const counters = new Counters(c1, s1, 0);
    s1.countStatus(0, 200);
    s1.countStatus(0, 200);
    s1.workerRequestStarted(1);
    s1.countPoolEvent(0, PoolEvent.Queued);
    expect(answered(counters, 10, A)).toBe(2);

    // reload: B, A (A moves to index 1), C added
    const c2 = pools(B, A, C);
    const s2 = layoutFor(c2, 2);
    counters.publish(c2, s2, 100);
    s1.countStatus(0, 200); // a request in flight in the old generation finishes
    s2.countStatus(1, 200);
    s2.workerRequestStarted(1);
    s2.countFailure(1, FailureKind.Reset);
    let snap = counters.snapshot(200);
    expect(snap.generation).toBe(2);
    expect(snap.pools[0]!.backends.map((b) => b.url)).toEqual([B, A, C]);
    expect(answered(counters, 200, A)).toBe(4);
    expect(snap.workers.map((w) => w.requests)).toEqual([0, 2]);
    expect(snap.pools[0]!.events[PoolEvent.Queued]).toBe(1);
    expect(snap.pools[0]!.backends[1]!.failures[FailureKind.Reset]).toBe(1);

    // past the hold: folded; later writes into the old buffer are no longer read
    snap = counters.snapshot(100 + HOLD);
    expect(answered(counters, 100 + HOLD, A)).toBe(4);
    s1.countStatus(0, 200);
    expect(answered(counters, 100 + HOLD + 1, A)).toBe(4);
    s2.countStatus(1, 200);
    expect(answered(counters, 100 + HOLD + 2, A)).toBe(5);
    expect(counters.snapshot(100 + HOLD + 3).workers.map((w) => w.requests)).toEqual([0, 2]);
  });

  it('keeps a removed backend counting in totals, and gauges from the live buffer only', () => {
    const c1 = pools(A, B);
    const s1 = layoutFor(c1, 1);
    const counters = new Counters(c1, s1, 0);
    s1.countStatus(1, 503);
    s1.tryAcquireInflight(0, 0);
    const c2 = pools(A);
    const s2 = layoutFor(c2, 2);
    counters.publish(c2, s2, 10);
    for (const now of [20, 10 + HOLD, 10 + 2 * HOLD]) {
      const snap = counters.snapshot(now);
      expect(snap.removedBackends).toEqual([expect.objectContaining({ pool: 'web', url: B, status: [0, 0, 0, 0, 1] })]);
      expect(snap.pools[0]!.backends[0]!.inflight).toBe(0); // the old buffer's in-flight request is not a gauge here
    }
  });

  it('sums several quick generations, each folded once', () => {
    let cfg = pools(A);
    let state = layoutFor(cfg, 1);
    const counters = new Counters(cfg, state, 0);
    for (let g = 2; g <= 6; g++) {
      state.countStatus(0, 200);
      cfg = pools(A);
      state = layoutFor(cfg, g);
      counters.publish(cfg, state, g * 1000);
    }
    state.countStatus(0, 200);
    const seen: number[] = [];
    for (const now of [6500, 9000, 12_000, 20_000, 40_000]) seen.push(answered(counters, now, A));
    expect(seen).toEqual([6, 6, 6, 6, 6]);
  });
});
