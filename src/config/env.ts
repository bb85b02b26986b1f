// Owns `${VAR}` and `${VAR:-default}` in config text: replaced from the environment before the
// YAML is parsed (as envsubst would, so `port: ${PORT}` becomes a number and `{ port: ${PORT} }`
// works in flow style), outside comments. `$${` is a literal `${`. Keeps a map from offsets in
// the substituted text back to the original, so that every problem points at the file as written.

/** A `${...}` that cannot be replaced, at an offset of the substituted text. */
export interface EnvProblem {
  readonly offset: number;
  readonly message: string;
}

export interface Substituted {
  readonly text: string;
  readonly problems: readonly EnvProblem[];
  /** An offset in `text` -> the offset in the original text (a replaced value maps to its `${`). */
  readonly originalOffset: (offset: number) => number;
}

interface Span {
  /** Where the replacement starts and ends in the new text, and the `${...}` it replaced. */
  readonly newStart: number;
  readonly newEnd: number;
  readonly oldStart: number;
  readonly oldEnd: number;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

/** The last character before `i` that is not a space or tab ('' at the start of a line). */
function previousOnLine(text: string, i: number): string {
  for (let k = i - 1; k >= 0; k--) {
    const c = text[k]!;
    if (c === '\n') return '';
    if (c !== ' ' && c !== '\t') return c;
  }
  return '';
}

/**
 * Replaces every `${NAME}` and `${NAME:-default}` outside comments with the variable's value
 * (the default when it is unset or empty). An unset variable without a default, a value with a
 * line break (it would change the file's structure), a bad name or an unclosed `${` is a problem;
 * it is replaced by nothing so that the rest of the file can still be read.
 */
export function substituteEnv(text: string, env: Readonly<Record<string, string | undefined>>): Substituted {
  let out = '';
  const spans: Span[] = [];
  const problems: EnvProblem[] = [];
  // what the scanner is inside: a quoted string needs to be known only so that a '#' in it is
  // not read as a comment
  let quote: '"' | "'" | null = null;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (quote === null && c === '#' && (i === 0 || isBlank(text[i - 1]))) {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      out += text.slice(i, stop);
      i = stop;
      continue;
    }
    if (quote === null && (c === '"' || c === "'") && ':-[{,?'.includes(previousOnLine(text, i))) {
      quote = c;
    } else if (quote === '"' && c === '\\') {
      out += text.slice(i, i + 2);
      i += 2;
      continue;
    } else if (quote !== null && c === quote) {
      // '' inside single quotes is an escaped quote, not the end
      if (quote === "'" && text[i + 1] === "'") {
        out += "''";
        i += 2;
        continue;
      }
      quote = null;
    }
    if (c === '$' && text[i + 1] === '$' && text[i + 2] === '{') {
      out += '${';
      spans.push({ newStart: out.length - 2, newEnd: out.length, oldStart: i, oldEnd: i + 3 });
      i += 3;
      continue;
    }
    if (c !== '$' || text[i + 1] !== '{') {
      out += c;
      i++;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    const newline = text.indexOf('\n', i + 2);
    const newStart = out.length;
    if (close === -1 || (newline !== -1 && newline < close)) {
      problems.push({ offset: newStart, message: 'environment variable: "${" without a closing "}" on the same line (write "$${" for a literal "${")' });
      spans.push({ newStart, newEnd: newStart, oldStart: i, oldEnd: i + 2 });
      i += 2;
      continue;
    }
    const inner = text.slice(i + 2, close);
    const sep = inner.indexOf(':-');
    const name = sep === -1 ? inner : inner.slice(0, sep);
    const fallback = sep === -1 ? undefined : inner.slice(sep + 2);
    let value = '';
    if (!NAME.test(name)) {
      problems.push({ offset: newStart, message: `environment variable: "\${${inner}}" is not a variable name (letters, digits and _, not starting with a digit), or "\${NAME:-default}"` });
    } else {
      const set = env[name];
      if (set !== undefined && (set !== '' || fallback === undefined)) value = set;
      else if (fallback !== undefined) value = fallback;
      else problems.push({ offset: newStart, message: `environment variable ${name} is not set (give a default with \${${name}:-default})` });
      if (value.includes('\n') || value.includes('\r')) {
        problems.push({ offset: newStart, message: `environment variable ${name} holds a line break, which would change the file's structure` });
        value = '';
      }
    }
    out += value;
    spans.push({ newStart, newEnd: out.length, oldStart: i, oldEnd: close + 1 });
    i = close + 1;
  }

  const originalOffset = (offset: number): number => {
    // the last replacement that starts at or before offset (spans are in order)
    let lo = 0;
    let hi = spans.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (spans[mid]!.newStart <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found === -1) return offset;
    const s = spans[found]!;
    // an emptied `${...}` (the offset of its problem) maps to its `${` too
    if (offset < s.newEnd || offset === s.newStart) return s.oldStart;
    return offset - s.newEnd + s.oldEnd;
  };
  return { text: out, problems, originalOffset };
}
