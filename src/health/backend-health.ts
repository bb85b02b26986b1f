// Owns the health verdict of one backend of one pool: the rise/fall counter of active checks, the
// passive ejection judged from failure counts (with doubling ejection times), slow start, and an
// operator's drain. Pure: the caller passes the clock and the counters in, and publishes what
// `state()` and `ramp()` say. Kept across reloads (keyed by pool and URL), so a reload neither
// revives a dead backend nor forgets an ejection.

import { BackendState } from '../shared/layout.js';
import type { HealthCheckConfig, PassiveConfig } from '../config/types.js';

export interface HealthOptions {
  readonly health: HealthCheckConfig | null;
  readonly passive: PassiveConfig | null;
  readonly slowStartMs: number;
}

/** Longest ejection, unless `eject` itself is longer (Envoy's max_ejection_time default). */
export const MAX_EJECT_MS = 300_000;
/** A ramp starts here rather than at 0, so a returning backend is probed by real traffic at once. */
export const RAMP_FLOOR = 0.1;

export function stateName(s: BackendState): string {
  switch (s) {
    case BackendState.Up:
      return 'up';
    case BackendState.Down:
      return 'down';
    case BackendState.Draining:
      return 'draining';
    case BackendState.SlowStart:
      return 'slow-start';
  }
}

/** What is kept of a verdict across restarts (state_file): the operator's drain and an ejection. */
export interface KeptHealth {
  readonly draining: boolean;
  /** When the ejection ends (epoch ms); 0 when not ejected. */
  readonly ejectedUntil: number;
  /** Ejections in a row (the next one's doubling). */
  readonly ejections: number;
}

export class BackendHealth {
  readonly pool: string;
  readonly url: string;
  private opts: HealthOptions;
  private activeDown = false;
  private okStreak = 0;
  private failStreak = 0;
  private ejectedUntil = 0;
  /** Active probes passed in a row since the passive ejection began: `rise` of them lift it. */
  private okSinceEjection = 0;
  /** Ejections in a row; each doubles the next ejection time, and it decays while healthy. */
  private ejections = 0;
  private calmSince = 0;
  private slowStartSince = 0;
  private draining = false;
  /** Passive window: failure counter samples (time, value), oldest first. */
  private sampleTimes: number[] = [];
  private sampleValues: number[] = [];
  /** Why the state last changed, for the log line that reports the change. */
  reason = 'configured';

  constructor(pool: string, url: string, opts: HealthOptions) {
    this.pool = pool;
    this.url = url;
    this.opts = opts;
  }

  /** A reload may change the checks; the verdicts so far are kept. */
  reconfigure(opts: HealthOptions): void {
    this.opts = opts;
    if (opts.health === null && this.activeDown) {
      this.activeDown = false;
      this.reason = 'active checks removed by reload';
    }
    if (opts.passive === null && this.ejectedUntil > 0) {
      this.ejectedUntil = 0;
      this.reason = 'passive checks removed by reload';
    }
    if (opts.slowStartMs === 0) this.slowStartSince = 0;
  }

  /**
   * The failure counter starts again from 0 (a reload lays out a new buffer): samples of the old
   * one are no baseline for the new one, whose difference would read as ~2^32 failures.
   */
  restartCounters(): void {
    this.resetWindow();
  }

  /** One active probe's result. */
  onProbe(ok: boolean, detail: string, now: number): void {
    const h = this.opts.health;
    if (h === null) return;
    if (ok) {
      this.failStreak = 0;
      this.okStreak++;
      if (this.activeDown && this.okStreak >= h.rise) {
        this.activeDown = false;
        this.reason = `active check passed ${h.rise} time(s) in a row`;
        if (this.ejectedUntil === 0) this.startSlowStart(now);
      }
      // Envoy's default: active checks that see the backend healthy again end a passive
      // ejection early (a restarted backend need not wait out `eject`)
      if (this.ejectedUntil > 0 && ++this.okSinceEjection >= h.rise && !this.activeDown) {
        this.endEjection(now, `active check passed ${h.rise} time(s) in a row since the passive ejection`);
      }
    } else {
      this.okStreak = 0;
      this.okSinceEjection = 0;
      this.failStreak++;
      if (!this.activeDown && this.failStreak >= h.fall) {
        this.activeDown = true;
        this.slowStartSince = 0;
        this.reason = `active check failed ${h.fall} time(s) in a row: ${detail}`;
      }
    }
  }

  /**
   * Passive check, on the primary's tick: `failures` is the backend's failure counter (unsigned,
   * wrapping). `mayEject` is false when this is the pool's last available backend.
   */
  observe(failures: number, now: number, mayEject: boolean): void {
    const p = this.opts.passive;
    if (this.ejectedUntil > 0) {
      if (now >= this.ejectedUntil) this.endEjection(now, 'ejection time over');
      return;
    }
    if (p === null) return;
    const times = this.sampleTimes;
    const values = this.sampleValues;
    times.push(now);
    values.push(failures);
    // The sample before the current one stays as the baseline even when it is older than the
    // window: a window shorter than the tick, or a tick a little late, would count nothing.
    while (times.length > 2 && times[0]! < now - p.windowMs) {
      times.shift();
      values.shift();
    }
    const inWindow = (failures - values[0]!) >>> 0;
    if (this.ejections > 0 && now - this.calmSince >= this.ejectMs()) {
      this.ejections--; // healthy for a whole ejection time: the next one is shorter again
      this.calmSince = now;
    }
    if (inWindow < p.failures || this.activeDown || !mayEject) return;
    this.ejections++;
    const ms = this.ejectMs();
    this.ejectedUntil = now + ms;
    this.okSinceEjection = 0;
    this.slowStartSince = 0;
    this.resetWindow();
    this.reason = `passive check: ${inWindow} failed request(s) within ${p.windowMs}ms; ejected for ${ms}ms`;
  }

  private endEjection(now: number, reason: string): void {
    this.ejectedUntil = 0;
    this.calmSince = now;
    this.resetWindow();
    this.reason = reason;
    if (!this.activeDown) this.startSlowStart(now);
  }

  private ejectMs(): number {
    const p = this.opts.passive;
    if (p === null) return 0;
    const doubled = p.ejectMs * 2 ** Math.max(0, this.ejections - 1);
    return Math.min(doubled, Math.max(p.ejectMs, MAX_EJECT_MS));
  }

  private resetWindow(): void {
    this.sampleTimes = [];
    this.sampleValues = [];
  }

  private startSlowStart(now: number): void {
    this.slowStartSince = this.opts.slowStartMs > 0 ? now : 0;
  }

  /** A backend new to its pool by DNS discovery: it ramps up like a returning one (slow start). */
  join(now: number): void {
    this.startSlowStart(now);
    this.reason = 'discovered by DNS';
  }

  /** Operator's drain (admin): no new requests; in-flight ones finish. */
  setDraining(on: boolean): void {
    if (this.draining === on) return;
    this.draining = on;
    this.reason = on ? 'drained by the operator' : 'enabled by the operator';
  }

  kept(): KeptHealth {
    return { draining: this.draining, ejectedUntil: this.ejectedUntil, ejections: this.ejections };
  }

  /** True when kept() would differ from `k`. */
  differsFrom(k: KeptHealth): boolean {
    return k.draining !== this.draining || k.ejectedUntil !== this.ejectedUntil || k.ejections !== this.ejections;
  }

  /**
   * A verdict kept from an earlier run: the drain, and an ejection that has not ended by `now`
   * (only with passive checks on; one that ended while corelb was down is over).
   */
  restore(k: KeptHealth, now: number): void {
    this.setDraining(k.draining);
    if (this.opts.passive === null) return;
    this.ejections = Math.max(0, Math.floor(k.ejections));
    if (k.ejectedUntil > now) {
      this.ejectedUntil = k.ejectedUntil;
      this.slowStartSince = 0;
      this.reason = `ejection kept from before the restart, until ${new Date(k.ejectedUntil).toISOString()}`;
    }
    this.calmSince = now;
  }

  state(now: number): BackendState {
    if (this.activeDown || this.ejectedUntil > 0) return BackendState.Down;
    if (this.draining) return BackendState.Draining;
    if (this.slowStartSince > 0) {
      if (now - this.slowStartSince < this.opts.slowStartMs) return BackendState.SlowStart;
      this.slowStartSince = 0;
      this.reason = 'slow start over';
    }
    return BackendState.Up;
  }

  /** Share of the configured weight in effect, (0, 1]: below 1 only during slow start. */
  ramp(now: number): number {
    if (this.slowStartSince === 0) return 1;
    const t = (now - this.slowStartSince) / this.opts.slowStartMs;
    return t >= 1 ? 1 : RAMP_FLOOR + (1 - RAMP_FLOOR) * t;
  }
}
