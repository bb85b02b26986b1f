// Owns reading a parsed YAML tree with positions: typed accessors over yaml nodes that report
// every mismatch as a ConfigProblem at the node's line and column, and never throw. The
// validators in schema.ts and pools.ts are written against this, not against plain objects,
// because plain objects have lost the positions.

import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import type { ConfigProblem } from './types.js';
import { describeValue, parseDuration } from './units.js';

/** A value in the tree: the node (null when the YAML had none), where to point, and its path. */
export interface Field {
  readonly node: unknown;
  /** The node whose position a problem is reported at (the key when the value is missing). */
  readonly at: unknown;
  readonly path: string;
}

/** A mapping's entries by key, in file order; keys already checked against the allowed set. */
export type Entries = ReadonlyMap<string, Field & { readonly key: unknown }>;

// Alias resolution walks the document each time and aliases can nest (or loop): a cap keeps a
// hostile "billion laughs" file from hanging `corelb check`.
const MAX_ALIASES = 1000;

/** setTimeout fires at once for delays above 2^31-1 ms, so a longer timeout would mean "none". */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export function childPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

export class Walk {
  readonly problems: ConfigProblem[] = [];
  /** Located notes that do not make the file invalid (a certificate about to expire). */
  readonly warnings: ConfigProblem[] = [];
  private aliases = 0;

  /**
   * `lines` counts the lines of the file as written; `toOriginal` maps an offset in the parsed
   * text to that file (they differ where environment variables were replaced).
   */
  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly toOriginal: (offset: number) => number = (offset) => offset,
  ) {}

  /** Records a problem at `node` (or at the start of the file when it has no position). */
  report(at: unknown, path: string, message: string): void {
    const { line, col } = this.position(at);
    this.problems.push({ file: this.file, line, col, path, message });
  }

  /** Records a warning at `node`: the configuration stays valid. */
  warn(at: unknown, path: string, message: string): void {
    const { line, col } = this.position(at);
    this.warnings.push({ file: this.file, line, col, path, message });
  }

  /** Records a problem at a character offset in the file (for the YAML parser's own errors). */
  reportOffset(offset: number, path: string, message: string): void {
    const { line, col } = this.lines.linePos(this.toOriginal(offset));
    this.problems.push({ file: this.file, line, col, path, message });
  }

  position(at: unknown): { line: number; col: number } {
    const range = (at as { range?: unknown } | null)?.range;
    const offset = Array.isArray(range) && typeof range[0] === 'number' ? range[0] : 0;
    return this.lines.linePos(this.toOriginal(offset));
  }

  /** The node an alias stands for; the node itself otherwise; undefined after reporting. */
  private deref(f: Field): unknown {
    if (!isAlias(f.node)) return f.node;
    if (++this.aliases > MAX_ALIASES) {
      if (this.aliases === MAX_ALIASES + 1) this.report(f.node, f.path, `more than ${MAX_ALIASES} aliases`);
      return undefined;
    }
    const target = f.node.resolve(this.doc);
    if (target === undefined) this.report(f.node, f.path, `unknown alias *${f.node.source}`);
    return target;
  }

  /** True when the field is absent or an explicit null (`key:` with nothing after it). */
  isNull(f: Field): boolean {
    return f.node === null || f.node === undefined || (isScalar(f.node) && f.node.value === null);
  }

  /**
   * The field with its alias (if any) replaced by the aliased node, for callers that branch on
   * the node's kind before reading it; undefined after reporting a bad alias.
   */
  resolved(f: Field): Field | undefined {
    const node = this.deref(f);
    return node === undefined ? undefined : { node, at: f.at, path: f.path };
  }

  isMapping(f: Field): boolean {
    return isMap(f.node);
  }

  /** The plain value of a scalar field; for collections, a marker object used only to describe it. */
  private plain(node: unknown): unknown {
    if (node === null || node === undefined) return null;
    if (isScalar(node)) return node.value;
    if (isSeq(node)) return [];
    return {};
  }

  /** A scalar's JS value (string, number, boolean or null), or undefined after reporting. */
  scalar(f: Field, expected: string): unknown {
    const node = this.deref(f);
    if (node === undefined) return undefined;
    if (node !== null && !isScalar(node)) {
      this.report(f.at, f.path, `expected ${expected}, got ${describeValue(this.plain(node))}`);
      return undefined;
    }
    return this.plain(node);
  }

  string(f: Field, expected = 'a string'): string | undefined {
    const v = this.scalar(f, expected);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.mismatch(f, expected, v);
    return v;
  }

  boolean(f: Field): boolean | undefined {
    const v = this.scalar(f, 'true or false');
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') return this.mismatch(f, 'true or false', v);
    return v;
  }

  /** An integer in [min, max]. */
  integer(f: Field, min: number, max: number): number | undefined {
    const expected = `an integer from ${min} to ${max}`;
    const v = this.scalar(f, expected);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return this.mismatch(f, expected, v);
    return v;
  }

  /**
   * Milliseconds for a duration like `2s`: greater than 0 and short enough for a Node timer,
   * since every duration in the file ends up as one.
   */
  duration(f: Field): number | undefined {
    const v = this.scalar(f, 'a duration like "2s"');
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (typeof ms === 'string') this.report(f.at, f.path, ms);
    else if (ms <= 0) this.report(f.at, f.path, 'must be greater than 0');
    else if (ms > MAX_TIMEOUT_MS) this.report(f.at, f.path, `must be at most ${MAX_TIMEOUT_MS}ms (about 24.8 days), the longest timer Node supports`);
    else return ms;
    return undefined;
  }

  /** Reports "expected X, got Y" and returns undefined, so callers can `return this.mismatch(...)`. */
  mismatch(f: Field, expected: string, got: unknown): undefined {
    this.report(f.at, f.path, `expected ${expected}, got ${describeValue(got)}`);
    return undefined;
  }

  /** The items of a list, each as a Field with an indexed path; undefined after reporting. */
  list(f: Field): Field[] | undefined {
    const node = this.deref(f);
    if (node === undefined) return undefined;
    if (!isSeq(node)) return this.mismatch(f, 'a list', this.plain(node));
    return node.items.map((item, i) => ({ node: item, at: item ?? f.at, path: `${f.path}[${i}]` }));
  }

  /**
   * The entries of a mapping. Unknown keys (when `allowed` is given) and duplicate keys are
   * reported at the key and left out; a non-string key is reported and left out.
   */
  map(f: Field, allowed: readonly string[] | null): Entries | undefined {
    const node = this.deref(f);
    if (node === undefined) return undefined;
    if (!isMap(node)) return this.mismatch(f, 'a mapping', this.plain(node));
    const out = new Map<string, Field & { key: unknown }>();
    for (const pair of node.items) {
      const key = pair.key;
      const name = isScalar(key) ? key.value : this.plain(key);
      if (typeof name !== 'string') {
        this.report(key ?? f.at, f.path, `expected a key name (string), got ${describeValue(name)}; quote it`);
        continue;
      }
      const path = childPath(f.path, name);
      if (allowed !== null && !allowed.includes(name)) {
        this.report(key, path, `unknown key "${name}"; allowed keys: ${allowed.join(', ')}`);
        continue;
      }
      const first = out.get(name);
      if (first !== undefined) {
        this.report(key, path, `duplicate key "${name}" (first at line ${this.position(first.key).line})`);
        continue;
      }
      out.set(name, { node: pair.value, at: pair.value ?? key, key, path });
    }
    return out;
  }
}

function start(node: unknown): number {
  const range = (node as { range?: unknown } | null)?.range;
  return Array.isArray(range) && typeof range[0] === 'number' ? range[0] : Infinity;
}

function contains(node: unknown, offset: number): boolean {
  const range = (node as { range?: unknown } | null)?.range;
  return Array.isArray(range) && typeof range[0] === 'number' && range[0] <= offset && offset <= (range[2] as number);
}

/**
 * The field path (as Walk names it, `pools.web.backends[1]`) of the deepest node at `offset`,
 * for problems found in the text rather than in the tree; '' when no field holds it.
 */
export function pathAt(doc: Document, offset: number): string {
  let node: unknown = doc.contents;
  let path = '';
  for (;;) {
    if (isMap(node)) {
      // the last entry whose key starts before offset: an emptied value (`port: ${UNSET}`) has
      // no node of its own, but belongs to the key before it
      let pair: (typeof node.items)[number] | undefined;
      for (const p of node.items) if (isPair(p) && start(p.key) <= offset) pair = p;
      if (pair === undefined) return path;
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      path = childPath(path, key);
      if (!contains(pair.value, offset)) return path;
      node = pair.value;
    } else if (isSeq(node)) {
      const i = node.items.findIndex((item) => contains(item, offset));
      if (i === -1) return path;
      path = `${path}[${i}]`;
      node = node.items[i];
    } else return path;
  }
}
