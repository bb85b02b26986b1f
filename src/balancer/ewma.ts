// Owns `ewma`: latency-aware "least time" (Finagle's / Linkerd's P2C over a peak-sensitive EWMA).
//
//   latency L(i), µs, kept in the backend's slot of the shared buffer (two words: the value, and
//   its stamp, low 32 bits of ms time):
//     as read at time t:   L = stored · w,  w = exp(−(t − stamp) / τ),  τ = pool.ewmaDecayMs
//     a sample rtt (µs):   L' = rtt                   if rtt > L   (peak-sensitive: up at once)
//                          L' = stored·w + rtt·(1−w)  otherwise    (= L + rtt·(1−w))
//   cost(i) = L(i) · (1 + inflight(i) / weight(i)),  weight = effective weight in weight units
//   pick:    two weighted draws (as p2c); the second wins only if it costs 1/8 less than the
//            first (cost_b · 9/8 < cost_a); closer than that, the first draw wins.
//
// Why not L · (inflight + 1) / weight: at low load it ranks identical backends by weight alone,
// so the lightest one starves (simulated, weights 5:3:2, equal latencies, one request at a time:
// 84% / 16% / 0.1%). Here the weight scales the queue, as capacity does (weight 5 with 5 in flight
// is as busy as weight 1 with 1), and latencies within 1/8 of each other (noise) count as a tie,
// so idle identical backends get their weighted share from the draw (50% / 30% / 20%). Under
// load both forms converge (in-flight dominates); a backend 3x slower is avoided the same.
//
// Reading decays L towards 0 (Finagle's PeakEwma get() observes 0), so a backend that was slow
// and stopped getting traffic is drawn again after a while and wins its share back if it
// recovered: the fast backends keep being re-measured at their real latency, its stale value
// keeps shrinking (Traefik starved such a backend: 5 of 1,500 requests). The decayed value is
// computed, never written, so a pick writes nothing shared but the winner's in-flight count.
//
// Never measured (stored 0): with nothing in flight it costs 0, so it wins and is probed; with a
// request in flight it loses to any measured backend (Finagle's penalty), so an unknown backend
// takes one request at a time until its first response measures it. Two unmeasured backends
// compare as p2c does (in-flight per weight), so a pool with no samples yet balances by weight.

import type { Entries, Walk } from '../config/walk.js';
import { WEIGHT_SCALE, type SharedState } from '../shared/layout.js';
import { coarseNow, startClock } from '../clock.js';
import { PowerOfTwo } from './p2c.js';
import { SCHEDULE_ONLY } from './schedule.js';
import type { AlgorithmSpec, BackendIndex, BalancerOptions } from './types.js';

export interface EwmaSettings {
  /** ewma: how fast old latency samples fade (time constant); default 10s. */
  readonly ewmaDecayMs: number;
}
const EWMA_DEFAULTS: EwmaSettings = Object.freeze({ ewmaDecayMs: 10_000 });

export const ewma: AlgorithmSpec<'ewma', EwmaSettings> = {
  ...SCHEDULE_ONLY,
  name: 'ewma',
  optionKeys: ['ewma_decay'],
  unused: EWMA_DEFAULTS,
  options: ewmaOptions,
  create: (state, pool, opts) => new Ewma(state, pool, opts),
};

/** `ewma_decay`: a duration. */
function ewmaOptions(walk: Walk, fields: Entries): EwmaSettings {
  const f = fields.get('ewma_decay');
  const decayMs = f === undefined ? undefined : walk.duration(f);
  return decayMs === undefined ? EWMA_DEFAULTS : { ewmaDecayMs: decayMs };
}

// The backend slot's words (layout.ts): the EWMA in µs (0 = never measured), and the coarse ms
// time (low 32 bits of Date.now()) of its last update. The balancer reads them at one slot index
// per backend; the functions below are for readers outside it.
const SLOT_MICROS = 0;
const SLOT_STAMP = 1;

/** Latency EWMA of backend `i` in µs as stored (0 = never measured). */
export function ewmaMicros(state: SharedState, i: BackendIndex): number {
  return Atomics.load(state.words, state.backendSlot(i) + SLOT_MICROS);
}
/** When backend `i`'s EWMA was last updated (low 32 bits of ms time). */
export function ewmaStamp(state: SharedState, i: BackendIndex): number {
  return Atomics.load(state.uwords, state.backendSlot(i) + SLOT_STAMP);
}

/** Largest storable latency (Int32 word): about 35 minutes in µs. */
const MAX_MICROS = 0x7fffffff;

/**
 * Each thread's clock ticks on its own, so a stamp written by another worker may be a few ms
 * ahead of this thread's time: such a "negative" elapsed time (up to 65 s) counts as 0, not as
 * the 49 days its unsigned difference would make it (which would decay a fresh sample away).
 */
const AHEAD = 0x1_0000_0000 - 65_536;

/** ms from stamp `then` to stamp `now` (both low 32 bits of ms time). */
function elapsed(now: number, then: number): number {
  const d = (now - then) >>> 0;
  return d > AHEAD ? 0 : d;
}

export interface EwmaOptions extends BalancerOptions {
  /** Clock in ms (default: clock.ts, Date.now() as of its last tick); tests inject one to let time pass without sleeping. */
  readonly now?: () => number;
}

export class Ewma extends PowerOfTwo {
  /** An injected clock, or null for the thread's coarse clock (read directly: no call to box a double). */
  private readonly clock: (() => number) | null;
  /** 1 / τ in 1/ms; 0 τ would mean "no memory", so it decays everything at once. */
  private readonly invTau: number;

  constructor(state: SharedState, pool: number, opts: EwmaOptions) {
    super(state, pool, opts);
    this.clock = opts.now ?? null;
    if (this.clock === null) startClock(5);
    const tau = opts.pool.ewmaDecayMs;
    this.invTau = tau > 0 ? 1 / tau : 1e9;
  }

  /** Low 32 bits of the time in ms: the stamp format of the shared buffer. */
  private stamp(): number {
    return (this.clock === null ? coarseNow() : this.clock()) >>> 0;
  }

  /** Weight of the stored value after `elapsed` ms: exp(−elapsed/τ). */
  private keep(elapsed: number): number {
    return Math.exp(-elapsed * this.invTau);
  }

  /** L(i) as read at `stamp`, in µs; 0 = never measured, else at least 1 so in-flight still counts. */
  private latency(i: BackendIndex, stamp: number): number {
    const { state } = this;
    const slot = state.backendSlot(i);
    const stored = Atomics.load(state.words, slot + SLOT_MICROS);
    if (stored === 0) return 0;
    const l = stored * this.keep(elapsed(stamp, Atomics.load(state.uwords, slot + SLOT_STAMP)));
    return l < 1 ? 1 : l;
  }

  /** True when `b` costs clearly less than `a` (see the formula at the top), without dividing. */
  protected override cheaper(b: BackendIndex, a: BackendIndex): boolean {
    const { state } = this;
    const stamp = this.stamp();
    const la = this.latency(a, stamp);
    const lb = this.latency(b, stamp);
    const ia = state.inflight(a);
    const ib = state.inflight(b);
    const wa = state.effectiveWeight(a);
    const wb = state.effectiveWeight(b);
    if (la === 0 && lb === 0) return ib * wa < ia * wb;
    if (la === 0) return ia > 0; // unmeasured a: free while idle, last while busy
    if (lb === 0) return ib === 0;
    // L·(1 + inflight/w) with w in WEIGHT_SCALE units is L·(inflight·SCALE + w)/w; cross-multiplied
    return 9 * lb * (ib * WEIGHT_SCALE + wb) * wa < 8 * la * (ia * WEIGHT_SCALE + wa) * wb;
  }

  /**
   * One sample: `ms` from pick to response head. One compare-exchange, no retry: if another
   * worker updated this backend in between, this sample is dropped (an average can afford it).
   */
  override observe(backend: BackendIndex, ms: number): void {
    if (!(ms >= 0) || !this.draw.owns(backend)) return; // NaN, negative, foreign index: ignore
    const { state } = this;
    let rtt = ms * 1000;
    rtt = rtt < 1 ? 1 : rtt > MAX_MICROS ? MAX_MICROS : rtt;
    const stamp = this.stamp();
    const slot = state.backendSlot(backend);
    const seen = Atomics.load(state.words, slot + SLOT_MICROS);
    let next = rtt;
    if (seen !== 0) {
      const w = this.keep(elapsed(stamp, Atomics.load(state.uwords, slot + SLOT_STAMP)));
      const current = seen * w;
      if (rtt <= current) next = current + rtt * (1 - w);
    }
    next = Math.round(next);
    next = next < 1 ? 1 : next > MAX_MICROS ? MAX_MICROS : next;
    if (Atomics.compareExchange(state.words, slot + SLOT_MICROS, seen, next) === seen) Atomics.store(state.uwords, slot + SLOT_STAMP, stamp);
  }
}
