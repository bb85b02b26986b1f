// The shared layout: the accessors that workers rely on.
import { describe, expect, it } from 'vitest';
import {
  BackendState,
  FAILURE_KINDS,
  FailureKind,
  LINE,
  POOL_EVENTS,
  PoolEvent,
  SharedState,
  WEIGHT_SCALE,
} from '../../../src/shared/layout.js';

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

  it('starts every backend up, at its full effective weight (weight * WEIGHT_SCALE), with the generation given', () => {
    expect(WEIGHT_SCALE).toBe(1000);
    const s = SharedState.create({ pools: [{ weights: [1, 5] }, { weights: [3] }] }, 7);
    expect(s.generation).toBe(7);
    expect(SharedState.attach(s.buffer).generation).toBe(7);
    expect(SharedState.create({ pools: [{ weights: [1] }] }).generation).toBe(1);
    expect([0, 1, 2].map((i) => [s.state(i), s.weight(i), s.effectiveWeight(i), s.poolOf(i)])).toEqual([
      [BackendState.Up, 1, 1000, 0],
      [BackendState.Up, 5, 5000, 0],
      [BackendState.Up, 3, 3000, 1],
    ]);
    s.setEffectiveWeight(1, 500);
    expect(s.effectiveWeight(1)).toBe(500);
    expect(s.weight(1)).toBe(5); // the configured weight is separate
  });

  it('counts failures per kind, every kind also in the passive total, and retries, per backend', () => {
    const s = SharedState.create({ pools: [{ weights: [1, 1, 1] }] });
    const kinds = [FailureKind.Connect, FailureKind.ConnectTimeout, FailureKind.Reset, FailureKind.ResponseTimeout, FailureKind.InvalidResponse, FailureKind.Status5xx];
    expect(kinds).toHaveLength(FAILURE_KINDS);
    kinds.forEach((kind, k) => {
      for (let n = 0; n <= k; n++) s.countFailure(1, kind);
    });
    s.countRetried(1);
    s.countRetried(1);
    expect(kinds.map((kind) => s.failures(1, kind))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.passiveFailures(1)).toBe(21);
    expect(s.retried(1)).toBe(2);
    for (const other of [0, 2]) {
      expect(kinds.map((kind) => s.failures(other, kind))).toEqual([0, 0, 0, 0, 0, 0]);
      expect([s.passiveFailures(other), s.retried(other)]).toEqual([0, 0]);
    }
  });

  it('counts pool events per pool and kind', () => {
    const s = SharedState.create({ pools: [{ weights: [1] }, { weights: [1, 1] }] });
    const events = [PoolEvent.NoBackend, PoolEvent.Queued, PoolEvent.QueueTimeout, PoolEvent.RetryBudgetExhausted];
    expect(events).toHaveLength(POOL_EVENTS);
    events.forEach((e, k) => {
      for (let n = 0; n <= k; n++) s.countPoolEvent(1, e);
    });
    expect(events.map((e) => s.poolEvents(1, e))).toEqual([1, 2, 3, 4]);
    expect(events.map((e) => s.poolEvents(0, e))).toEqual([0, 0, 0, 0]);
  });

  it('keeps state, hot counters and failure counters of a backend on separate cache lines of its own', () => {
    const s = SharedState.create({ pools: [{ weights: [1, 1, 1] }] });
    /** Cache lines whose words `write` changes. */
    const lines = (write: () => void): number[] => {
      const before = Array.from(s.uwords);
      write();
      const changed = new Set<number>();
      s.uwords.forEach((w, i) => w !== before[i] && changed.add(Math.floor(i / LINE)));
      return [...changed];
    };
    const read = lines(() => {
      s.setState(1, BackendState.SlowStart);
      s.setEffectiveWeight(1, 123);
    });
    const hot = lines(() => {
      s.tryAcquireInflight(1, 0);
    });
    const failures = lines(() => {
      s.countFailure(1, FailureKind.Reset);
      s.countRetried(1);
    });
    expect([read.length, hot.length, failures.length]).toEqual([1, 1, 1]);
    const [r, h, f] = [read[0]!, hot[0]!, failures[0]!];
    expect([h - r, f - r]).toEqual([1, 2]); // three consecutive lines
    const counted = lines(() => {
      s.countRequest(1);
      s.countStatus(1, 200);
    });
    expect(counted).toHaveLength(1);
    expect([r, h, f]).not.toContain(counted[0]);
    const neighbours = [0, 2].flatMap((i) => lines(() => {
      s.setState(i, BackendState.Down);
      s.countRequest(i);
      s.countFailure(i, FailureKind.Connect);
    }));
    for (const line of neighbours) expect([r, h, f, counted[0]]).not.toContain(line);
  });

  it('each worker counts requests, answers and latencies on lines of its own; reads add them up', () => {
    const primary = SharedState.create({ pools: [{ weights: [1, 1] }], workers: 3 });
    const views = [0, 1, 2].map((w) => SharedState.attach(primary.buffer, w));
    const linesOf = (write: () => void): Set<number> => {
      const before = Array.from(primary.uwords);
      write();
      const changed = new Set<number>();
      primary.uwords.forEach((w, i) => w !== before[i] && changed.add(Math.floor(i / LINE)));
      return changed;
    };
    const written = views.map((v, w) =>
      linesOf(() => {
        for (let n = 0; n <= w; n++) {
          v.countRequest(1);
          v.countStatus(1, 503);
          v.recordLatency(1, 3000); // the 2.5-5 ms bucket
        }
      }),
    );
    for (let a = 0; a < 3; a++) {
      for (let b = a + 1; b < 3; b++) for (const line of written[a]!) expect(written[b]!.has(line), `workers ${a} and ${b} share line ${line}`).toBe(false);
    }
    for (const s of [primary, ...views]) {
      expect(s.requests(1)).toBe(6);
      expect(s.statusCount(1, 4)).toBe(6);
      expect(s.latencyBucket(1, 2)).toBe(6);
      expect(s.latencySumMicros(1)).toBe(18_000);
      expect(s.requests(0)).toBe(0);
    }
  });

  it('the latency sum of a worker carries past 2^32 µs', () => {
    const s = SharedState.create({ pools: [{ weights: [1] }], workers: 2 });
    const w1 = SharedState.attach(s.buffer, 1);
    w1.recordLatency(0, 0xffffffff);
    w1.recordLatency(0, 2);
    s.recordLatency(0, 5);
    expect(s.latencySumMicros(0)).toBe(0xffffffff + 2 + 5);
  });
});
