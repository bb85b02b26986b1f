// Owns the state file (`state_file:`): what is kept of runtime changes across restarts (admin
// drains and weight overrides, passive ejections with their expiry), by pool + backend URL, in a
// small JSON document. Written atomically (a temporary file next to it, fsync, rename, fsync of the
// directory), read leniently: a missing or corrupt file, or a bad entry, is a warning, never a
// refusal to start.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MAX_WEIGHT } from '../config/pools.js';

export const STATE_FILE_VERSION = 1;

export interface KeptBackend {
  readonly pool: string;
  /** The normalised URL, as in the config: a changed URL is another backend. */
  readonly backend: string;
  readonly draining: boolean;
  /** The admin's weight override; null when the config's weight applies. */
  readonly weight: number | null;
  /** Epoch ms when a passive ejection ends; 0: not ejected. */
  readonly ejectedUntil: number;
  /** Ejections in a row (the next ejection's doubling). */
  readonly ejections: number;
}

export type StateFileRead =
  | { readonly ok: true; readonly backends: readonly KeptBackend[]; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly missing: boolean; readonly warning: string };

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** One entry of the file, or why it is not one. */
function entryOf(v: unknown): KeptBackend | string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not an object';
  const o = v as Record<string, unknown>;
  if (typeof o.pool !== 'string' || o.pool === '') return 'pool is not a name';
  if (typeof o.backend !== 'string' || o.backend === '') return 'backend is not a URL';
  if (typeof o.draining !== 'boolean') return 'draining is not true or false';
  const w = o.weight;
  if (w !== null && !(isCount(w) && w >= 1 && w <= MAX_WEIGHT)) return `weight is not null or an integer from 1 to ${MAX_WEIGHT}`;
  if (!isCount(o.ejectedUntil)) return 'ejectedUntil is not a time in ms';
  if (!isCount(o.ejections)) return 'ejections is not a count';
  return { pool: o.pool, backend: o.backend, draining: o.draining, weight: w, ejectedUntil: o.ejectedUntil, ejections: o.ejections };
}

export function readStateFile(file: string): StateFileRead {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, missing: true, warning: `state file ${file} does not exist yet: starting with the configuration alone` };
    return { ok: false, missing: false, warning: `cannot read state file ${file}: ${(err as Error).message}; starting with the configuration alone` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, missing: false, warning: `state file ${file} is not valid JSON (${(err as Error).message}); starting with the configuration alone` };
  }
  const d = doc as { version?: unknown; backends?: unknown } | null;
  if (d === null || typeof d !== 'object' || d.version !== STATE_FILE_VERSION || !Array.isArray(d.backends)) {
    return { ok: false, missing: false, warning: `state file ${file} is not a corelb state file of version ${STATE_FILE_VERSION}; starting with the configuration alone` };
  }
  const backends: KeptBackend[] = [];
  const warnings: string[] = [];
  d.backends.forEach((v: unknown, i: number) => {
    const e = entryOf(v);
    if (typeof e === 'string') warnings.push(`state file ${file}: entry ${i} ignored: ${e}`);
    else backends.push(e);
  });
  return { ok: true, backends, warnings };
}

/**
 * Replaces the file with `backends`, atomically: a reader (or a crash) sees the old file or the
 * new one, never a part. Throws on failure (the caller logs it; the old file stays).
 */
export function writeStateFile(file: string, backends: readonly KeptBackend[], now = Date.now()): void {
  const text = JSON.stringify({ version: STATE_FILE_VERSION, savedAt: new Date(now).toISOString(), backends }, null, 2) + '\n';
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    const data = Buffer.from(text, 'utf8');
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
  // the rename itself is durable once the directory is synced (not every file system allows it)
  let dir: number | null = null;
  try {
    dir = openSync(dirname(file), 'r');
    fsyncSync(dir);
  } catch {
    /* best effort */
  } finally {
    if (dir !== null) closeSync(dir);
  }
}
