// Owns a pool's failure handling settings: active health checks (`health`), passive checks
// from real traffic (`passive`), `slow_start`, `retries` and `retry_budget`. Each reader returns
// the default after reporting a problem; the load fails on any problem, so the value is unused.

import type { HealthCheckConfig, PassiveConfig, PoolConfig } from './types.js';
import { describeValue, formatDuration, parseDuration } from './units.js';
import type { Entries, Field, Walk } from './walk.js';

export const HEALTH_KEYS = ['path', 'interval', 'timeout', 'rise', 'fall', 'expect'] as const;
export const PASSIVE_KEYS = ['failures', 'window', 'eject'] as const;
export const MAX_RETRIES = 10;
/** rise and fall: more than 100 probes in a row would take minutes to act on anything. */
export const MAX_RISE_FALL = 100;
const MAX_FAILURES = 1_000_000;

/** Values used when a key is absent. Durations in ms; retryBudget as a fraction. */
export const POOL_DEFAULTS = Object.freeze({
  health: Object.freeze<HealthCheckConfig>({ path: '/healthz', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, expectMin: 200, expectMax: 399 }),
  passive: Object.freeze<PassiveConfig>({ failures: 5, windowMs: 10_000, ejectMs: 30_000 }),
  slowStartMs: 0,
  retries: 2,
  retryBudget: 0.2,
});

export type PoolSettings = Pick<PoolConfig, 'health' | 'passive' | 'slowStartMs' | 'retries' | 'retryBudget'>;

/** `e`: the pool's entries, keys already checked against POOL_KEYS. */
export function validatePoolSettings(walk: Walk, e: Entries): PoolSettings {
  return {
    health: validateHealth(walk, e.get('health')),
    passive: validatePassive(walk, e.get('passive')),
    slowStartMs: validateSlowStart(walk, e.get('slow_start')),
    retries: validateRetries(walk, e.get('retries')),
    retryBudget: validateRetryBudget(walk, e.get('retry_budget')),
  };
}

/**
 * A section that can be switched: true and an empty value (everything under it commented out)
 * mean all defaults, false means off. Returns the mapping's field to read, or the verdict.
 */
function switchable(walk: Walk, f: Field, what: string): Field | 'defaults' | 'off' {
  const r = walk.resolved(f);
  if (r === undefined) return 'off';
  if (walk.isNull(r)) return 'defaults';
  if (walk.isMapping(r)) return r;
  const expected = `true, false or a mapping of ${what} settings`;
  const v = walk.scalar(r, expected);
  if (v === true) return 'defaults';
  if (v !== false && v !== undefined) walk.mismatch(r, expected, v);
  return 'off';
}

/** Absent or false: no active checks. */
function validateHealth(walk: Walk, f: Field | undefined): HealthCheckConfig | null {
  if (f === undefined) return null;
  const s = switchable(walk, f, 'health check');
  if (s === 'off') return null;
  const d = POOL_DEFAULTS.health;
  if (s === 'defaults') return d;
  const e = walk.map(s, HEALTH_KEYS);
  if (e === undefined) return null;
  const interval = e.get('interval');
  const intervalMs = interval === undefined ? d.intervalMs : walk.duration(interval);
  const { expectMin, expectMax } = validateExpect(walk, e.get('expect')) ?? d;
  return {
    path: validateHealthPath(walk, e.get('path')) ?? d.path,
    intervalMs: intervalMs ?? d.intervalMs,
    timeoutMs: validateProbeTimeout(walk, e.get('timeout'), intervalMs),
    rise: integer(walk, e.get('rise'), 1, MAX_RISE_FALL, d.rise),
    fall: integer(walk, e.get('fall'), 1, MAX_RISE_FALL, d.fall),
    expectMin,
    expectMax,
  };
}

function integer(walk: Walk, f: Field | undefined, min: number, max: number, fallback: number): number {
  return f === undefined ? fallback : (walk.integer(f, min, max) ?? fallback);
}

function validateHealthPath(walk: Walk, f: Field | undefined): string | undefined {
  if (f === undefined) return undefined;
  const raw = walk.string(f, 'a path starting with "/"');
  if (raw === undefined) return undefined;
  if (!raw.startsWith('/')) walk.report(f.at, f.path, `must start with "/", got ${JSON.stringify(raw)}`);
  // The path goes verbatim into the probe's request line, where only visible ASCII is valid,
  // and a '#' would start a fragment the backend never sees.
  else if (/[^\x21-\x7e]|#/.test(raw)) {
    walk.report(f.at, f.path, `must not contain blanks, "#" or characters outside printable ASCII (percent-encode them), got ${JSON.stringify(raw)}`);
  } else return raw;
  return undefined;
}

/**
 * The probe timeout, at most the interval so that one probe ends before the next is due. When
 * left out it is 1s, or the interval when that is shorter, so `interval: 500ms` alone is valid.
 * `intervalMs`: undefined when the interval was wrong (already reported; nothing to compare).
 */
function validateProbeTimeout(walk: Walk, f: Field | undefined, intervalMs: number | undefined): number {
  const fallback = Math.min(POOL_DEFAULTS.health.timeoutMs, intervalMs ?? Infinity);
  if (f === undefined) return fallback;
  const ms = walk.duration(f);
  if (ms === undefined) return fallback;
  if (intervalMs !== undefined && ms > intervalMs) {
    walk.report(f.at, f.path, `must be at most the interval (${formatDuration(intervalMs)}), got ${formatDuration(ms)}: a probe must end before the next one is due`);
  }
  return ms;
}

// `200-399`; blanks around the dash are harmless. A single code comes from YAML as a number.
const STATUS_RANGE = /^(\d+)\s*-\s*(\d+)$/;
const EXPECT_FORMS = 'a status range like "200-399" or one status code like 200';

function validateExpect(walk: Walk, f: Field | undefined): { expectMin: number; expectMax: number } | undefined {
  if (f === undefined) return undefined;
  const v = walk.scalar(f, EXPECT_FORMS);
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return statusRange(walk, f, v, v, v);
  const m = typeof v === 'string' ? STATUS_RANGE.exec(v.trim()) : null;
  if (m === null) return walk.mismatch(f, EXPECT_FORMS, v);
  return statusRange(walk, f, Number(m[1]), Number(m[2]), v);
}

/** `raw`: the value as written, for the message. */
function statusRange(walk: Walk, f: Field, low: number, high: number, raw: unknown): { expectMin: number; expectMax: number } | undefined {
  if ([low, high].some((code) => code < 100 || code > 599)) {
    walk.report(f.at, f.path, `status codes are from 100 to 599, got ${describeValue(raw)}`);
  } else if (low > high) {
    walk.report(f.at, f.path, `${low} is greater than ${high}: write the range low-high, like "200-399"`);
  } else return { expectMin: low, expectMax: high };
  return undefined;
}

/** Absent (or true, or empty): on with the defaults; false: off. */
function validatePassive(walk: Walk, f: Field | undefined): PassiveConfig | null {
  const d = POOL_DEFAULTS.passive;
  if (f === undefined) return d;
  const s = switchable(walk, f, 'passive check');
  if (s === 'off') return null;
  if (s === 'defaults') return d;
  const e = walk.map(s, PASSIVE_KEYS);
  if (e === undefined) return d;
  const window = e.get('window');
  const eject = e.get('eject');
  return {
    failures: integer(walk, e.get('failures'), 1, MAX_FAILURES, d.failures),
    windowMs: (window === undefined ? undefined : walk.duration(window)) ?? d.windowMs,
    ejectMs: (eject === undefined ? undefined : walk.duration(eject)) ?? d.ejectMs,
  };
}

/**
 * A duration, or off: 0, false and a zero duration (`0s`) all read as 0. The bare number 0 is
 * allowed here, unlike elsewhere, because zero needs no unit.
 */
function validateSlowStart(walk: Walk, f: Field | undefined): number {
  if (f === undefined) return POOL_DEFAULTS.slowStartMs;
  const v = walk.scalar(f, 'a duration like "30s", or 0 for off');
  if (v === undefined) return POOL_DEFAULTS.slowStartMs;
  if (v === 0 || v === false || parseDuration(v) === 0) return 0;
  return walk.duration(f) ?? POOL_DEFAULTS.slowStartMs;
}

function validateRetries(walk: Walk, f: Field | undefined): number {
  return integer(walk, f, 0, MAX_RETRIES, POOL_DEFAULTS.retries);
}

// `20%`, `12.5%`: digits only, so a sign or an exponent is a mistake, not a value.
const PERCENT = /^(\d+)(?:\.(\d+))?\s*%$/;

/** A percentage, as a fraction: `20%` -> 0.2. */
function validateRetryBudget(walk: Walk, f: Field | undefined): number {
  const fallback = POOL_DEFAULTS.retryBudget;
  if (f === undefined) return fallback;
  const expected = 'a percentage like "20%"';
  const v = walk.scalar(f, expected);
  if (v === undefined) return fallback;
  // Is `retry_budget: 20` 20% or 20 retries per request? Like a duration without a unit, ask.
  if (typeof v === 'number') {
    walk.report(f.at, f.path, `needs a % sign, like 20% (got ${describeValue(v)})`);
    return fallback;
  }
  const m = typeof v === 'string' ? PERCENT.exec(v.trim()) : null;
  if (m === null) return walk.mismatch(f, expected, v) ?? fallback;
  // Shifting the decimal point in the text gives the double nearest the fraction: "12.5e-2" is
  // 0.125, where 12.5 / 100 could be off in the last bit for other values.
  const fraction = Number(`${m[1]}.${m[2] ?? '0'}e-2`);
  if (fraction > 1) {
    walk.report(f.at, f.path, `must be from 0% to 100%, got ${JSON.stringify(v)}`);
    return fallback;
  }
  return fraction;
}
