// Owns the config file's units: durations (`500ms`, `2s`, `1.5m`, `1h`) and sizes (`512kb`, `10mb`).
// Each parser returns the value (ms or bytes) as a number, or what is wrong as a string, so that
// the loader can attach a file position; nothing here throws.

const DURATION_FACTORS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_FACTORS: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

// Integer or decimal number, optional blanks, optional unit letters. Config text, not the request
// path, so a regex is fine here.
const QUANTITY = /^(\d+)(?:\.(\d+))?\s*([A-Za-z]*)$/;

/** Describes a raw value for an error message: `string "abc"`, `number 3`, `a list`. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : typeof v;
}

/**
 * `whole.frac` times `factor`, exactly: the digits are scaled as integers so that `1.1s` is 1100,
 * not 1100.0000000000002. Returns NaN when the result is not a whole number.
 */
function scale(whole: string, frac: string | undefined, factor: number): number {
  const digits = Number(whole + (frac ?? ''));
  const v = (digits * factor) / 10 ** (frac?.length ?? 0);
  return Number.isInteger(v) ? v : Number.NaN;
}

/** Milliseconds for `500ms`, `2s`, `1.5m`, `1h`; an error message otherwise. Units are lower-case. */
export function parseDuration(v: unknown): number | string {
  if (typeof v === 'number') return `needs a unit: ms, s, m or h (e.g. "${v}ms" or "${v}s")`;
  if (typeof v !== 'string') return `expected a duration like "500ms", "2s" or "1m", got ${describeValue(v)}`;
  const m = QUANTITY.exec(v.trim());
  if (m === null) return `expected a duration like "500ms", "2s" or "1m", got ${describeValue(v)}`;
  const [, whole = '', frac, unit = ''] = m;
  if (unit === '') return `needs a unit: ms, s, m or h (got ${describeValue(v)})`;
  const factor = DURATION_FACTORS[unit];
  if (factor === undefined) return `unknown duration unit "${unit}" in ${JSON.stringify(v)}: use ms, s, m or h`;
  const ms = scale(whole, frac, factor);
  if (Number.isNaN(ms)) return `${JSON.stringify(v)} is not a whole number of milliseconds`;
  if (!Number.isSafeInteger(ms)) return `${JSON.stringify(v)} is too large`;
  return ms;
}

/** Bytes for `100b`, `512kb`, `10mb`, `1gb` (1kb = 1024, units case-insensitive) or a bare integer. */
export function parseSize(v: unknown): number | string {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    return `expected a size like "10mb" or a whole number of bytes >= 0, got ${describeValue(v)}`;
  }
  if (typeof v !== 'string') return `expected a size like "512kb", "10mb" or "1gb", got ${describeValue(v)}`;
  const m = QUANTITY.exec(v.trim());
  if (m === null) return `expected a size like "512kb", "10mb" or "1gb", got ${describeValue(v)}`;
  const [, whole = '', frac, unit = ''] = m;
  const factor = unit === '' ? 1 : SIZE_FACTORS[unit.toLowerCase()];
  if (factor === undefined) return `unknown size unit "${unit}" in ${JSON.stringify(v)}: use b, kb, mb or gb`;
  const bytes = scale(whole, frac, factor);
  if (Number.isNaN(bytes)) return `${JSON.stringify(v)} is not a whole number of bytes`;
  if (!Number.isSafeInteger(bytes)) return `${JSON.stringify(v)} is too large`;
  return bytes;
}

/** `ms` written back the way an operator would write it: `2s`, `1m`, `1500ms`. For messages. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
