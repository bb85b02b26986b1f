// The shared layout: the weighted schedule and the accessors that workers rely on.
import { describe, expect, it } from 'vitest';
import { BackendState, SharedState, smoothSchedule } from '../../../src/shared/layout.js';

describe('smooth weighted schedule', () => {
  it('interleaves 5:1:1 as nginx does', () => {
    expect(smoothSchedule([5, 1, 1]).map((i) => 'abc'[i]).join(' ')).toBe('a a b a c a a');
  });
  it.each([
    [[1, 1, 1], 3],
    [[3, 1], 4],
    [[2, 4, 6], 6],
    [[1000, 1], 1001],
  ])('weights %j give a cycle of %i with exact counts', (weights, length) => {
    const s = smoothSchedule(weights);
    expect(s).toHaveLength(length);
    const g = weights.reduce((a, b) => { while (b) [a, b] = [b, a % b]; return a; });
    weights.forEach((w, i) => expect(s.filter((x) => x === i)).toHaveLength(w / g));
  });
});

describe('SharedState', () => {
  it('numbers backends pool by pool and keeps them on separate cache lines', () => {
    const s = SharedState.create({ pools: [{ weights: [1, 2] }, { weights: [3] }] });
    expect(s.backendCount).toBe(3);
    expect(s.poolFirstBackend(1)).toBe(2);
    expect(s.weight(2)).toBe(3);
    s.countRequest(0);
    expect(s.requests(0)).toBe(1);
    expect(s.requests(1)).toBe(0);
  });
  it('a second view over the same buffer sees the same state', () => {
    const a = SharedState.create({ pools: [{ weights: [1, 1] }] });
    const b = SharedState.attach(a.buffer);
    a.setState(1, BackendState.Down);
    expect(b.available(1)).toBe(false);
    expect(b.tryAcquireInflight(0, 1)).toBe(true);
    expect(a.tryAcquireInflight(0, 1)).toBe(false);
    b.releaseInflight(0);
    expect(a.inflight(0)).toBe(0);
  });
  it('refuses a buffer of another layout', () => {
    expect(() => SharedState.attach(new SharedArrayBuffer(256))).toThrow(/layout/);
  });
});
