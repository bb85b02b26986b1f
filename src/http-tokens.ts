// Owns HTTP's own reading of comma-separated lists (RFC 9110 §5.6.1): elements split at commas,
// optional whitespace around them is SP and HTAB only (never String.prototype.trim, which also
// strips NBSP, VT, FF and Unicode spaces), elements lower-cased for case-insensitive tokens.

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

/** The non-empty elements of the list `value`, lower-cased, appended to `into` (made on first use). */
export function listElements(value: string, into: string[] | null = null): string[] | null {
  const n = value.length;
  let start = 0;
  while (start <= n) {
    let end = value.indexOf(',', start);
    if (end < 0) end = n;
    let a = start;
    let b = end;
    while (a < b && isOws(value.charCodeAt(a))) a++;
    while (b > a && isOws(value.charCodeAt(b - 1))) b--;
    if (b > a) (into ??= []).push(value.slice(a, b).toLowerCase());
    start = end + 1;
  }
  return into;
}
