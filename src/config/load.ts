// Owns turning config text into a Config: YAML parse (with positions) -> validate -> normalise
// -> deep-freeze. Every problem, YAML syntax included, comes back as a located ConfigProblem;
// nothing here throws for bad input.

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { deepFreeze } from './freeze.js';
import { validateConfig, type ValidateOptions } from './schema.js';
import type { ConfigProblem, LoadResult } from './types.js';
import { substituteEnv } from './env.js';
import { pathAt, Walk } from './walk.js';

export interface ParseOptions extends ValidateOptions {
  /** Where `${VAR}` in the text is looked up; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** The line starts of `text`, for positions in the file as written. */
function countLines(text: string): LineCounter {
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  return lines;
}

/** Problems in file order (validation finds them section by section). */
function failed(problems: readonly ConfigProblem[]): LoadResult {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, problems: deepFreeze(sorted) };
}

function yamlMessage(e: YAMLError): string {
  if (e.code === 'MULTIPLE_DOCS') return 'YAML: the file must hold a single document (remove the second "---")';
  if (e.code === 'MISSING_CHAR' && e.message.includes('quote')) return `YAML: this quoted string is never closed (${e.message})`;
  return `YAML: ${e.message.replace(/\s+/g, ' ')}`;
}

/**
 * Where an unclosed quoted string starts. The parser only notices at the end of the file (a
 * quoted string may span lines), which is useless to point at; the opening quote is the last
 * unescaped quote character before that point, since the unclosed string holds no other.
 */
function openingQuote(text: string, end: number, quote: '"' | "'"): number | undefined {
  for (let i = Math.min(end, text.length) - 1; i >= 0; i--) {
    if (text[i] !== quote) continue;
    if (quote === '"') {
      let slashes = 0;
      while (text[i - 1 - slashes] === '\\') slashes++;
      if (slashes % 2 === 0) return i;
    } else {
      // '' is an escaped quote inside single quotes: an odd run holds the opening one first.
      let start = i;
      while (text[start - 1] === "'") start--;
      if ((i - start + 1) % 2 === 1) return start;
      i = start;
    }
  }
  return undefined;
}

function yamlOffset(text: string, e: YAMLError): number {
  if (e.code === 'MISSING_CHAR') {
    const quote = e.message.includes('"quote') ? '"' : e.message.includes("'quote") ? "'" : undefined;
    if (quote !== undefined) return openingQuote(text, e.pos[0], quote) ?? e.pos[0];
  }
  return e.pos[0];
}

/** Parses and validates config text; `file` only labels the problems. */
export function parseConfig(original: string, file: string, opts: ParseOptions = {}): LoadResult {
  const env = substituteEnv(original, opts.env ?? process.env);
  const text = env.text;
  // uniqueKeys off: duplicate keys are reported by the walker, which knows the field's path.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  const walk = new Walk(file, doc, countLines(original), env.originalOffset);
  for (const e of doc.errors) walk.reportOffset(yamlOffset(text, e), '', yamlMessage(e));
  // a missing variable is the mistake to fix; what its empty value does to the checks is noise
  for (const p of env.problems) walk.reportOffset(p.offset, pathAt(doc, p.offset), p.message);
  // A tree with syntax errors is partly guessed; checking it would add noise to the real error.
  if (walk.problems.length > 0) return failed(walk.problems);
  for (const w of doc.warnings) walk.reportOffset(w.pos[0], '', yamlMessage(w));

  let config;
  try {
    config = validateConfig(walk, { node: doc.contents, at: doc.contents, path: '' }, opts);
  } catch (err) {
    // A bug here must still come out as a problem, not as a crash of `corelb check` or a reload.
    walk.reportOffset(0, '', `internal error while checking the configuration: ${String(err)}`);
  }
  if (config === undefined || walk.problems.length > 0) return failed(walk.problems);
  return { ok: true, config: deepFreeze(config), text, warnings: deepFreeze([...walk.warnings]) };
}

/** Reads (synchronously) and parses a config file; an unreadable file is a problem at 1:1. */
export function loadConfigFile(file: string, opts: ParseOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : code === 'EACCES' ? 'permission denied' : String(err);
    return failed([{ file, line: 1, col: 1, path: '', message: `cannot read the configuration file: ${why}` }]);
  }
  return parseConfig(text, file, opts);
}
