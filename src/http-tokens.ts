// Owns HTTP's own reading of comma-separated lists (RFC 9110 §5.6.1): elements split at commas,
// optional whitespace around them is SP and HTAB only (never String.prototype.trim, which also
// strips NBSP, VT, FF and Unicode spaces), elements lower-cased for case-insensitive tokens.

/** Token characters of RFC 9110 (field names, transfer codings, chunk extensions): 1 for each. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** `text` [start, end) is a non-empty token. */
export function isTokenSpan(text: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c > 255 || TCHAR[c] !== 1) return false;
  }
  return true;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** `value` without SP and HTAB at either end (HTTP's optional whitespace, and nothing else). */
export function trimOws(value: string): string {
  let a = 0;
  let b = value.length;
  while (a < b && isOws(value.charCodeAt(a))) a++;
  while (b > a && isOws(value.charCodeAt(b - 1))) b--;
  return a === 0 && b === value.length ? value : value.slice(a, b);
}

/** The non-empty elements of the list `value`, lower-cased unless `keepCase`, appended to `into` (made on first use). */
export function listElements(value: string, into: string[] | null = null, keepCase = false): string[] | null {
  const n = value.length;
  let start = 0;
  while (start <= n) {
    let end = value.indexOf(',', start);
    if (end < 0) end = n;
    const element = trimOws(value.slice(start, end));
    if (element.length > 0) (into ??= []).push(keepCase ? element : element.toLowerCase());
    start = end + 1;
  }
  return into;
}
