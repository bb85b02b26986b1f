// The per-backend health state machine, driven by a clock the test owns: active rise/fall, passive
// ejection from failure counts (doubling ejection times, capped, decaying), slow start and drain.
import { describe, expect, it } from 'vitest';
import { BackendHealth, MAX_EJECT_MS, RAMP_FLOOR, stateName, type HealthOptions } from '../../../src/health/backend-health.js';
import type { HealthCheckConfig, PassiveConfig } from '../../../src/config/types.js';
import { BackendState } from '../../../src/shared/layout.js';

/** Far from 0: a real clock never reads 0. */
const T0 = 1_000_000;
/** The publisher's tick: passive checks observe the counter this often. */
const TICK = 100;

const HEALTH: HealthCheckConfig = { path: '/healthz', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3, expectMin: 200, expectMax: 399 };
const PASSIVE: PassiveConfig = { failures: 3, windowMs: 1000, ejectMs: 1000 };

function options(o: Partial<HealthOptions> = {}): HealthOptions {
  return { health: HEALTH, passive: PASSIVE, slowStartMs: 0, ...o };
}

const Up = BackendState.Up;
const Down = BackendState.Down;
const Draining = BackendState.Draining;
const SlowStart = BackendState.SlowStart;
const name = (s: BackendState): string => stateName(s);

/**
 * One event at `t` ms after T0, then what to expect: `probe` is an active check's result,
 * `failures` the counter a passive tick reads (with `mayEject`, default true).
 */
interface Step {
  t: number;
  probe?: boolean;
  failures?: number;
  mayEject?: boolean;
  state?: BackendState;
  reason?: string;
  ramp?: number;
}

function play(h: BackendHealth, steps: readonly Step[]): void {
  for (const s of steps) {
    const now = T0 + s.t;
    if (s.probe !== undefined) h.onProbe(s.probe, s.probe ? 'status 200' : 'status 503, expected 200-399', now);
    if (s.failures !== undefined) h.observe(s.failures, now, s.mayEject ?? true);
    const at = `at t=${s.t}`;
    if (s.state !== undefined) expect(name(h.state(now)), at).toBe(name(s.state));
    if (s.reason !== undefined) expect(h.reason, at).toContain(s.reason);
    if (s.ramp !== undefined) expect(h.ramp(now), at).toBeCloseTo(s.ramp, 9);
  }
}

/** Passive ticks every TICK ms over [from, to], the counter at each tick given by `count(t)`. */
function ticks(from: number, to: number, count: (t: number) => number, extra: Partial<Step> = {}): Step[] {
  const out: Step[] = [];
  for (let t = from; t <= to; t += TICK) out.push({ t, failures: count(t), ...extra });
  return out;
}

/** The number of failure times at or before t. */
const failuresAt = (times: number[]) => (t: number) => times.filter((f) => f <= t).length;

describe('BackendHealth: sequences', () => {
  const cases: Array<[string, Partial<HealthOptions>, Step[]]> = [
    [
      'falls after `fall` failed probes and not before',
      {},
      [
        { t: 0, state: Up, reason: 'configured' },
        { t: 0, probe: false, state: Up },
        { t: 1000, probe: false, state: Up },
        { t: 2000, probe: false, state: Down, reason: 'active check failed 3 time(s) in a row: status 503' },
      ],
    ],
    [
      'a passed probe restarts the fall count',
      {},
      [
        { t: 0, probe: false },
        { t: 1000, probe: false },
        { t: 2000, probe: true, state: Up },
        { t: 3000, probe: false },
        { t: 4000, probe: false, state: Up },
        { t: 5000, probe: false, state: Down },
      ],
    ],
    [
      'rises after `rise` passed probes, ramps in slow start, then is up after slowStartMs',
      { slowStartMs: 10_000 },
      [
        { t: 0, probe: false },
        { t: 1000, probe: false },
        { t: 2000, probe: false, state: Down, ramp: 1 },
        { t: 3000, probe: true, state: Down },
        { t: 4000, probe: true, state: SlowStart, reason: 'active check passed 2 time(s) in a row', ramp: RAMP_FLOOR },
        { t: 9000, state: SlowStart, ramp: RAMP_FLOOR + (1 - RAMP_FLOOR) / 2 },
        { t: 13_999, state: SlowStart },
        { t: 14_000, state: Up, reason: 'slow start over', ramp: 1 },
      ],
    ],
    [
      'rises straight to up without slow start',
      { slowStartMs: 0 },
      [
        { t: 0, probe: false },
        { t: 1000, probe: false },
        { t: 2000, probe: false, state: Down },
        { t: 3000, probe: true, state: Down },
        { t: 4000, probe: true, state: Up, reason: 'active check passed 2 time(s)', ramp: 1 },
      ],
    ],
    [
      'a failed probe restarts the rise count',
      {},
      [
        { t: 0, probe: false },
        { t: 1000, probe: false },
        { t: 2000, probe: false },
        { t: 3000, probe: true },
        { t: 4000, probe: false, state: Down },
        { t: 5000, probe: true, state: Down },
        { t: 6000, probe: true, state: Up },
      ],
    ],
    [
      'passive: ejects when the failures within the window reach the threshold',
      {},
      [
        { t: 0, failures: 0, state: Up },
        { t: 100, failures: 1, state: Up },
        { t: 200, failures: 2, state: Up },
        { t: 300, failures: 3, state: Down, reason: 'passive check: 3 failed request(s) within 1000ms; ejected for 1000ms' },
        { t: 1299, failures: 3, state: Down },
        { t: 1300, failures: 3, state: Up, reason: 'ejection time over' },
      ],
    ],
    [
      'passive ejection lifted early by `rise` passed active probes after it (Envoy)',
      { passive: { failures: 3, windowMs: 1000, ejectMs: 30_000 } },
      [
        { t: 0, failures: 0, state: Up },
        { t: 100, failures: 3, state: Down, reason: 'ejected for 30000ms' },
        { t: 1000, probe: true, state: Down },
        { t: 2000, probe: true, state: Up, reason: 'active check passed 2 time(s) in a row since the passive ejection' },
        { t: 2100, failures: 3, state: Up },
      ],
    ],
    [
      'passive ejection: probes passed before it do not count, a failed probe restarts the count',
      { passive: { failures: 3, windowMs: 1000, ejectMs: 30_000 } },
      [
        { t: 0, probe: true },
        { t: 50, probe: true, state: Up },
        { t: 100, failures: 0 },
        { t: 200, failures: 3, state: Down },
        { t: 1000, probe: true, state: Down },
        { t: 2000, probe: false, state: Down },
        { t: 3000, probe: true, state: Down },
        { t: 4000, probe: true, state: Up },
      ],
    ],
    [
      'passive ejection and actively down: up once probes pass `rise` times, with slow start',
      { passive: { failures: 3, windowMs: 1000, ejectMs: 30_000 }, slowStartMs: 10_000 },
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 3, state: Down },
        { t: 1000, probe: false },
        { t: 2000, probe: false },
        { t: 3000, probe: false, state: Down },
        { t: 4000, probe: true, state: Down },
        { t: 5000, probe: true, state: SlowStart, ramp: RAMP_FLOOR },
      ],
    ],
    [
      'without active checks a passive ejection lasts its time',
      { health: null, passive: { failures: 3, windowMs: 1000, ejectMs: 5000 } },
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 3, state: Down },
        { t: 1000, probe: true, state: Down },
        { t: 2000, probe: true, state: Down },
        { t: 5099, failures: 3, state: Down },
        { t: 5100, failures: 3, state: Up, reason: 'ejection time over' },
      ],
    ],
    [
      'passive: failures spread wider than the window do not eject',
      {},
      [...ticks(0, 5000, failuresAt([50, 650, 1250, 1850, 2450, 3050, 3650, 4250, 4850])), { t: 5000, state: Up, reason: 'configured' }],
    ],
    [
      'passive: the same failures closer together do eject',
      {},
      [...ticks(0, 1000, failuresAt([50, 650, 950])), { t: 1000, state: Down, reason: '3 failed request(s) within 1000ms' }],
    ],
    [
      'passive: the counter may start anywhere (only differences count)',
      {},
      [
        { t: 0, failures: 1234, state: Up },
        { t: 100, failures: 1236, state: Up },
        { t: 200, failures: 1237, state: Down },
      ],
    ],
    [
      'passive: a window shorter than the tick counts the failures since the last tick',
      { passive: { failures: 2, windowMs: 50, ejectMs: 1000 } },
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 1, state: Up },
        { t: 200, failures: 2, state: Up },
        { t: 300, failures: 4, state: Down, reason: '2 failed request(s) within 50ms' },
      ],
    ],
    [
      'passive: a tick a little later than the window still counts the failures since the last one',
      { passive: { failures: 2, windowMs: 100, ejectMs: 1000 } },
      [
        { t: 0, failures: 0 },
        { t: 101, failures: 1 },
        { t: 203, failures: 3, state: Down },
      ],
    ],
    [
      'passive: mayEject=false (the pool\'s last backend) never ejects; once others are back it does',
      {},
      [...ticks(0, 2000, (t) => t / 10, { mayEject: false, state: Up }), { t: 2100, failures: 230, state: Down, reason: 'passive check' }],
    ],
    [
      'passive: the counter wrapping at 2^32 is still a difference of a few failures',
      {},
      [
        { t: 0, failures: 2 ** 32 - 2 },
        { t: 100, failures: 2 ** 32 - 1, state: Up },
        { t: 200, failures: 0, state: Up },
        { t: 300, failures: 1, state: Down, reason: '3 failed request(s)' },
      ],
    ],
    [
      'passive: one failure across the wrap does not eject',
      {},
      [
        { t: 0, failures: 2 ** 32 - 1 },
        { t: 100, failures: 0, state: Up },
        { t: 200, failures: 0, state: Up },
      ],
    ],
    [
      'passive: returns from ejection through slow start',
      { slowStartMs: 1000 },
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 3, state: Down },
        { t: 1100, failures: 3, state: SlowStart, reason: 'ejection time over', ramp: RAMP_FLOOR },
        { t: 1600, failures: 3, state: SlowStart, ramp: 0.55 },
        { t: 2100, failures: 3, state: Up, reason: 'slow start over', ramp: 1 },
      ],
    ],
    [
      'passive: returns straight to up when slowStartMs is 0',
      { slowStartMs: 0 },
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 3, state: Down },
        { t: 1100, failures: 3, state: Up, reason: 'ejection time over', ramp: 1 },
      ],
    ],
    [
      'passive: the failures before an ejection do not count again after it',
      {},
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 2 },
        { t: 200, failures: 3, state: Down },
        { t: 1200, failures: 3, state: Up },
        { t: 1300, failures: 3, state: Up },
        { t: 1400, failures: 5, state: Up },
        { t: 1500, failures: 6, state: Down },
      ],
    ],
    [
      'passive does not eject (or revive) a backend that active checks took down',
      { slowStartMs: 0 },
      [
        { t: 0, failures: 0 },
        { t: 0, probe: false },
        { t: 100, probe: false },
        { t: 200, probe: false, state: Down, reason: 'active check failed' },
        ...ticks(300, 1500, (t) => t, { state: Down, reason: 'active check failed' }),
        { t: 1600, probe: true },
        { t: 1700, probe: true, state: Up, reason: 'active check passed' },
      ],
    ],
    [
      'an ejected backend that active checks take down stays down when the ejection ends',
      { slowStartMs: 1000 },
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 3, state: Down, reason: 'passive check' },
        { t: 200, probe: false },
        { t: 300, probe: false },
        { t: 400, probe: false, state: Down },
        { t: 1100, failures: 3, state: Down },
        { t: 1200, failures: 3, state: Down },
        { t: 1300, probe: true },
        { t: 1400, probe: true, state: SlowStart, reason: 'active check passed' },
        { t: 2400, state: Up },
      ],
    ],
    [
      'an active fall and rise during an ejection: the rise lifts the ejection, slow start begins then',
      { slowStartMs: 1000 },
      [
        { t: 0, failures: 0 },
        { t: 100, failures: 3, state: Down, reason: 'passive check' },
        { t: 200, probe: false },
        { t: 200, probe: false },
        { t: 200, probe: false, state: Down, reason: 'active check failed' },
        { t: 300, probe: true, state: Down },
        { t: 400, probe: true, state: SlowStart, reason: 'since the passive ejection', ramp: RAMP_FLOOR },
        { t: 1399, state: SlowStart },
        { t: 1400, failures: 3, state: Up },
      ],
    ],
  ];
  it.each(cases)('%s', (_name, opts, steps) => {
    play(new BackendHealth('web', 'http://a:80', options(opts)), steps);
  });
});

describe('BackendHealth: ejection times', () => {
  /** Eject with a burst of failures starting at `t` (two ticks); returns the ejection's length. */
  function eject(h: BackendHealth, t: number, counter: number): number {
    h.observe(counter, T0 + t, true);
    h.observe(counter + 3, T0 + t + TICK, true);
    expect(h.state(T0 + t + TICK)).toBe(Down);
    const m = /ejected for (\d+)ms/.exec(h.reason);
    expect(m, h.reason).not.toBeNull();
    return Number(m![1]);
  }

  /** Ticks until the ejection that began at `t` is over; returns the time it ended. */
  function waitOut(h: BackendHealth, t: number, ms: number, counter: number): number {
    h.observe(counter, T0 + t + ms - 1, true);
    expect(h.state(T0 + t + ms - 1)).toBe(Down);
    h.observe(counter, T0 + t + ms, true);
    expect(h.state(T0 + t + ms)).toBe(Up);
    return t + ms;
  }

  it.each([
    ['doubles and caps at 300s', 100_000, [100_000, 200_000, 300_000, 300_000]],
    ['doubles from 1s', 1000, [1000, 2000, 4000, 8000, 16_000]],
    ['stays at eject when eject is longer than 300s', 400_000, [400_000, 400_000, 400_000]],
  ] as const)('repeat ejections: %s', (_what, ejectMs, expected) => {
    expect(MAX_EJECT_MS).toBe(300_000);
    const h = new BackendHealth('web', 'http://a:80', options({ passive: { ...PASSIVE, ejectMs } }));
    let t = 0;
    let counter = 0;
    const got: number[] = [];
    for (let k = 0; k < expected.length; k++) {
      const ms = eject(h, t, counter);
      got.push(ms);
      counter += 3;
      t = waitOut(h, t + TICK, ms, counter);
    }
    expect(got).toEqual(expected);
  });

  // After ejections of 1s and 2s, calm ticks (no failures), then a burst of failures on the tick
  // `calm` ms after the second ejection ended.
  it.each([
    [100, 4000],
    [1900, 4000],
    [2000, 2000], // healthy for a whole ejection time (2s): one step back
    [2900, 2000],
    [3000, 1000], // and another whole (now 1s) ejection time: back to the start
    [60_000, 1000], // never below the configured time
  ])('a burst %i ms after the second ejection ended is ejected for %i ms', (calm, expected) => {
    const h = new BackendHealth('web', 'http://a:80', options());
    let counter = 0;
    let t = waitOut(h, TICK, eject(h, 0, counter), (counter += 3));
    t = waitOut(h, t + 2 * TICK, eject(h, t + TICK, counter), (counter += 3));
    for (let c = TICK; c < calm; c += TICK) h.observe(counter, T0 + t + c, true);
    expect(h.state(T0 + t + calm - TICK)).toBe(Up);
    expect(eject(h, t + calm - TICK, counter)).toBe(expected);
  });
});

describe('BackendHealth: reload and drain', () => {
  it('reconfigure removing active checks revives an actively-down backend', () => {
    const h = new BackendHealth('web', 'http://a:80', options({ health: { ...HEALTH, fall: 1 } }));
    h.onProbe(false, 'connect ECONNREFUSED', T0);
    expect(h.state(T0)).toBe(Down);
    expect(h.reason).toContain('connect ECONNREFUSED');
    h.reconfigure(options({ health: null }));
    expect(h.state(T0 + 1)).toBe(Up);
    expect(h.reason).toBe('active checks removed by reload');
    h.onProbe(false, 'status 500', T0 + 2); // no checks any more: a stray result is ignored
    expect(h.state(T0 + 2)).toBe(Up);
  });

  it('reconfigure removing passive checks revives an ejected backend', () => {
    const h = new BackendHealth('web', 'http://a:80', options());
    h.observe(0, T0, true);
    h.observe(3, T0 + TICK, true);
    expect(h.state(T0 + TICK)).toBe(Down);
    h.reconfigure(options({ passive: null }));
    expect(h.state(T0 + 2 * TICK)).toBe(Up);
    expect(h.reason).toBe('passive checks removed by reload');
    h.observe(1000, T0 + 3 * TICK, true); // no passive checks: counters are not judged
    expect(h.state(T0 + 3 * TICK)).toBe(Up);
  });

  it('reconfigure keeps the verdicts when the checks stay', () => {
    const h = new BackendHealth('web', 'http://a:80', options({ health: { ...HEALTH, fall: 1 } }));
    h.onProbe(false, 'status 503', T0);
    h.reconfigure(options({ health: { ...HEALTH, fall: 5, rise: 1 } }));
    expect(h.state(T0 + 1)).toBe(Down);
    h.onProbe(true, 'status 200', T0 + 2); // the new rise applies
    expect(h.state(T0 + 2)).toBe(Up);
  });

  it('reconfigure turning slow start off ends a ramp at once', () => {
    const h = new BackendHealth('web', 'http://a:80', options({ slowStartMs: 10_000 }));
    h.observe(0, T0, true);
    h.observe(3, T0 + TICK, true);
    h.observe(3, T0 + TICK + 1000, true);
    expect(h.state(T0 + TICK + 1000)).toBe(SlowStart);
    h.reconfigure(options({ slowStartMs: 0 }));
    expect(h.state(T0 + TICK + 1001)).toBe(Up);
    expect(h.ramp(T0 + TICK + 1001)).toBe(1);
  });

  it('a restarted failure counter (a reload\'s new buffer) is not read as failures', () => {
    const h = new BackendHealth('web', 'http://a:80', options());
    h.observe(0, T0, true);
    h.observe(2, T0 + TICK, true);
    h.restartCounters();
    h.observe(0, T0 + 2 * TICK, true);
    expect(h.state(T0 + 2 * TICK)).toBe(Up);
    h.observe(1, T0 + 3 * TICK, true);
    expect(h.state(T0 + 3 * TICK)).toBe(Up);
    h.observe(3, T0 + 4 * TICK, true); // three failures on the new counter do eject
    expect(h.state(T0 + 4 * TICK)).toBe(Down);
  });

  it('drain: draining until enabled, down wins over draining, slow start resumes after', () => {
    const h = new BackendHealth('web', 'http://a:80', options({ health: { ...HEALTH, fall: 1, rise: 1 }, slowStartMs: 1000 }));
    h.setDraining(true);
    expect(h.state(T0)).toBe(Draining);
    expect(h.reason).toBe('drained by the operator');
    h.reason = 'marker';
    h.setDraining(true); // no change, no new reason
    expect(h.reason).toBe('marker');
    h.onProbe(false, 'status 503', T0 + 1);
    expect(h.state(T0 + 1)).toBe(Down);
    h.onProbe(true, 'status 200', T0 + 2);
    expect(h.state(T0 + 2)).toBe(Draining);
    h.setDraining(false);
    expect(h.reason).toBe('enabled by the operator');
    expect(h.state(T0 + 3)).toBe(SlowStart);
    expect(h.state(T0 + 1002)).toBe(Up);
  });

  it('names every state', () => {
    expect([Up, Down, Draining, SlowStart].map(stateName)).toEqual(['up', 'down', 'draining', 'slow-start']);
  });
});
