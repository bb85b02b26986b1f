// Owns the top level of the config file: which sections exist, their defaults, and the scalar
// sections (workers, log, timeouts, limits). Listeners live in listeners.ts, pools and routes in
// pools.ts, the admin section in admin-settings.ts.

import { accessSync, constants, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { validateAdmin } from './admin-settings.js';
import { validateCache } from './cache-settings.js';
import { validateResolver } from './discover-settings.js';
import { DEFAULT_LISTENER, validateListeners } from './listeners.js';
import { validatePools, validateRoutes } from './pools.js';
import type { Config, LogLevel } from './types.js';
import { parseDuration, parseSize } from './units.js';
import { MAX_TIMEOUT_MS, type Entries, type Field, type Walk } from './walk.js';

// Lives in walk.ts with the duration reader; kept exported here, where it always was.
export { MAX_TIMEOUT_MS };

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const TOP_LEVEL_KEYS = ['listen', 'workers', 'log', 'timeouts', 'limits', 'forwarded_for', 'state_file', 'resolver', 'pools', 'routes', 'admin', 'cache'] as const;

/** Values used when a section or key is absent. Durations in ms, sizes in bytes. */
export const DEFAULTS = Object.freeze({
  listen: DEFAULT_LISTENER,
  workers: 'auto' as const,
  log: Object.freeze({ level: 'info' as LogLevel, access: false, file: null as string | null }),
  timeouts: Object.freeze({ connectMs: 2000, responseMs: 30_000, idleMs: 60_000, queueMs: 1000, drainMs: 10_000, websocketIdleMs: 600_000 }),
  limits: Object.freeze({ maxBodyBytes: 10 * 1024 * 1024, maxConnectionsPerBackend: 0, websocketMessageBytes: 16 * 1024 * 1024 }),
  forwardedFor: true,
  stateFile: null as string | null,
});

/** A typo like `workers: 1000` would start that many threads; nobody means that. */
export const MAX_WORKERS = 1024;
const MAX_CONNECTIONS = 1_000_000;

export interface ValidateOptions {
  readonly availableParallelism?: number;
}

/**
 * The normalised Config for the document's root, or undefined when anything is wrong; every
 * problem is in `walk.problems`.
 */
export function validateConfig(walk: Walk, root: Field, opts: ValidateOptions = {}): Config | undefined {
  const top: Entries | undefined = walk.isNull(root) ? new Map() : walk.map(root, TOP_LEVEL_KEYS);
  if (top === undefined) return undefined;

  const listen = validateListeners(walk, top.get('listen'));
  const workers = validateWorkers(walk, top.get('workers'), opts);
  const log = validateLog(walk, top.get('log'));
  const timeouts = validateTimeouts(walk, top.get('timeouts'));
  const limits = validateLimits(walk, top.get('limits'));
  const admin = validateAdmin(walk, top.get('admin'), listen);
  const forwardedField = top.get('forwarded_for');
  const forwardedFor = forwardedField === undefined ? DEFAULTS.forwardedFor : (walk.boolean(forwardedField) ?? DEFAULTS.forwardedFor);

  const stateFile = validateStateFile(walk, top.get('state_file'));
  const resolver = validateResolver(walk, top.get('resolver'));

  const cache = validateCache(walk, top.get('cache'));
  const poolsField = top.get('pools');
  const pools = validatePools(walk, poolsField ?? { node: null, at: null, path: 'pools' }, poolsField === undefined, cache !== null);
  const routes = validateRoutes(walk, top.get('routes'), pools, poolsField, cache !== null);

  if (walk.problems.length > 0 || pools === undefined || routes === undefined) return undefined;
  return { listen, workers, log, timeouts, limits, forwardedFor, stateFile, resolver, pools: pools.pools, routes, admin, cache };
}

/** Entries of an optional section; an empty one (`log:` with everything commented out) is absent. */
function section(walk: Walk, f: Field | undefined, keys: readonly string[]): Entries | undefined {
  if (f === undefined || walk.isNull(f)) return undefined;
  return walk.map(f, keys);
}

function validateWorkers(walk: Walk, f: Field | undefined, opts: ValidateOptions): number {
  const auto = (): number => Math.max(1, opts.availableParallelism ?? availableParallelism());
  if (f === undefined) return auto();
  const expected = `"auto" or an integer from 1 to ${MAX_WORKERS}`;
  const v = walk.scalar(f, expected);
  if (v === undefined) return 1;
  if (v === 'auto') return auto();
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_WORKERS) walk.mismatch(f, expected, v);
  return typeof v === 'number' ? v : 1;
}

function validateLog(walk: Walk, f: Field | undefined): Config['log'] {
  const e = section(walk, f, ['level', 'access', 'file']);
  let level: LogLevel = DEFAULTS.log.level;
  let access: boolean = DEFAULTS.log.access;
  let file: string | null = DEFAULTS.log.file;
  const levelField = e?.get('level');
  if (levelField !== undefined) {
    const expected = `one of ${LOG_LEVELS.join(', ')}`;
    const v = walk.scalar(levelField, expected);
    if (v !== undefined) {
      const found = LOG_LEVELS.find((l) => l === v);
      if (found === undefined) walk.mismatch(levelField, expected, v);
      else level = found;
    }
  }
  const accessField = e?.get('access');
  if (accessField !== undefined) access = walk.boolean(accessField) ?? access;
  const fileField = e?.get('file');
  // `file:` with nothing after it (or null) is stdout, the default
  if (fileField !== undefined && !walk.isNull(fileField)) {
    const raw = walk.string(fileField, 'a file path');
    if (raw !== undefined) {
      if (raw.length === 0) walk.report(fileField.at, fileField.path, 'must not be empty (leave log.file out to log to stdout)');
      else {
        const why = logFileProblem(resolve(raw));
        if (why === null) file = resolve(raw);
        else walk.report(fileField.at, fileField.path, why);
      }
    }
  }
  return { level, access, file };
}

/**
 * Why the log file could not be opened for appending, or null. Checked here, at load time, so
 * that `corelb check`, a start and a reload all say so at the field, instead of the processes
 * failing later when they open it. The file itself may not exist yet: it is created (never its
 * directory: a missing directory is a typo more often than a wish).
 */
function logFileProblem(file: string): string | null {
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
  } catch {
    return `directory ${dir} does not exist`;
  }
  let exists = true;
  try {
    if (statSync(file).isDirectory()) return `${file} is a directory, not a file`;
  } catch {
    exists = false;
  }
  try {
    accessSync(exists ? file : dir, constants.W_OK);
  } catch {
    return exists ? `${file} is not writable` : `cannot create ${file}: directory ${dir} is not writable`;
  }
  return null;
}

/**
 * `state_file: PATH`: where runtime changes (drains, weight overrides, ejections) are kept. It is
 * replaced by renaming a temporary file next to it, so its directory must be writable.
 */
function validateStateFile(walk: Walk, f: Field | undefined): string | null {
  if (f === undefined || walk.isNull(f)) return DEFAULTS.stateFile;
  const raw = walk.string(f, 'a file path');
  if (raw === undefined) return null;
  if (raw.length === 0) {
    walk.report(f.at, f.path, 'must not be empty (leave state_file out to keep no state)');
    return null;
  }
  const file = resolve(raw);
  let why = logFileProblem(file);
  if (why === null) {
    try {
      accessSync(dirname(file), constants.W_OK);
    } catch {
      why = `directory ${dirname(file)} is not writable (the file is replaced by renaming a temporary file there)`;
    }
  }
  if (why !== null) walk.report(f.at, f.path, why);
  return why === null ? file : null;
}

function duration(walk: Walk, f: Field | undefined, fallback: number): number {
  return f === undefined ? fallback : (walk.duration(f) ?? fallback);
}

function validateTimeouts(walk: Walk, f: Field | undefined): Config['timeouts'] {
  const e = section(walk, f, ['connect', 'response', 'idle', 'queue', 'drain', 'websocket_idle']);
  let websocketIdleMs: number = DEFAULTS.timeouts.websocketIdleMs;
  const wsIdle = e?.get('websocket_idle');
  if (wsIdle !== undefined) {
    // uWS takes whole seconds, 0 (off) or 8 to 960 (its granularity is 4 s)
    const v = walk.scalar(wsIdle, 'a duration like "10m", or 0');
    const ms = v === undefined ? undefined : v === '0' || v === 0 ? 0 : parseDuration(v);
    if (typeof ms === 'string') walk.report(wsIdle.at, wsIdle.path, ms);
    else if (ms !== undefined && ms !== 0 && (ms < 8000 || ms > 960_000)) walk.report(wsIdle.at, wsIdle.path, 'must be 0 (no idle limit) or from 8s to 16m (what uWebSockets.js can time)');
    else if (ms !== undefined) websocketIdleMs = ms;
  }
  return {
    websocketIdleMs,
    connectMs: duration(walk, e?.get('connect'), DEFAULTS.timeouts.connectMs),
    responseMs: duration(walk, e?.get('response'), DEFAULTS.timeouts.responseMs),
    idleMs: duration(walk, e?.get('idle'), DEFAULTS.timeouts.idleMs),
    queueMs: duration(walk, e?.get('queue'), DEFAULTS.timeouts.queueMs),
    drainMs: duration(walk, e?.get('drain'), DEFAULTS.timeouts.drainMs),
  };
}

/** A size field's bytes; undefined (reported) when it is not a size. */
function size(walk: Walk, f: Field, example: string): number | undefined {
  const v = walk.scalar(f, `a size like "${example}"`);
  if (v === undefined) return undefined;
  const bytes = parseSize(v);
  if (typeof bytes !== 'string') return bytes;
  walk.report(f.at, f.path, bytes);
  return undefined;
}

function validateLimits(walk: Walk, f: Field | undefined): Config['limits'] {
  const e = section(walk, f, ['max_body', 'max_connections_per_backend', 'websocket_message']);
  let maxBodyBytes: number = DEFAULTS.limits.maxBodyBytes;
  let maxConnectionsPerBackend: number = DEFAULTS.limits.maxConnectionsPerBackend;
  const bodyField = e?.get('max_body');
  const body = bodyField === undefined ? undefined : size(walk, bodyField, '10mb');
  // 0 means "no limit" in the file; in the Config it becomes a limit nothing reaches, so
  // readers compare `length > maxBodyBytes` without a special case.
  if (body !== undefined) maxBodyBytes = body === 0 ? Number.MAX_SAFE_INTEGER : body;
  const connField = e?.get('max_connections_per_backend');
  if (connField !== undefined) maxConnectionsPerBackend = walk.integer(connField, 0, MAX_CONNECTIONS) ?? maxConnectionsPerBackend;
  let websocketMessageBytes: number = DEFAULTS.limits.websocketMessageBytes;
  const wsField = e?.get('websocket_message');
  const ws = wsField === undefined ? undefined : size(walk, wsField, '16mb');
  // uWS's maxPayloadLength; a control frame alone may carry 125 bytes
  if (ws !== undefined && (ws < 125 || ws > 1024 * 1024 * 1024)) walk.report(wsField!.at, wsField!.path, 'must be from 125b to 1gb');
  else if (ws !== undefined) websocketMessageBytes = ws;
  return { maxBodyBytes, maxConnectionsPerBackend, websocketMessageBytes };
}
