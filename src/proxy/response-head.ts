// Owns the translation of a backend's response head into the client's: hop-by-hop fields and
// the framing dropped (uWS writes its own Content-Length or chunking, and its own Date), every
// other field passed on byte for byte, as the backend sent it. The kept lines are moved together
// in place and handed to uWS as one view for writeStatus ("200 OK\r\nname: value..."): no string
// per field and no call into uWS per field.

import { READ_BUFFER, READ_WORDS, viewOf } from '../upstream/read-buffer.js';
import { bytesEqualLower, type ResponseHead } from '../upstream/response-parser.js';

/** Fields never passed on: hop-by-hop ones, and those the front writes itself. */
export function dropField(b: Buffer, start: number, end: number, tokens: string[] | null): boolean {
  switch (end - start) {
    case 2:
      return bytesEqualLower(b, start, end, 'te');
    case 4:
      return bytesEqualLower(b, start, end, 'date'); // uWS always writes its own Date
    case 7:
      return bytesEqualLower(b, start, end, 'trailer') || bytesEqualLower(b, start, end, 'upgrade');
    case 10:
      return bytesEqualLower(b, start, end, 'connection') || bytesEqualLower(b, start, end, 'keep-alive');
    case 14:
      return bytesEqualLower(b, start, end, 'content-length');
    case 17:
      return bytesEqualLower(b, start, end, 'transfer-encoding');
  }
  if (end - start > 6 && (b[start]! | 32) === 112 && bytesEqualLower(b, start, start + 6, 'proxy-')) return true;
  return tokens !== null && tokens.includes(b.toString('latin1', start, end).toLowerCase());
}

/**
 * The status text and kept field lines of `head`, for `res.writeStatus`. Rewrites the head's
 * bytes in place; the view is valid only as long as they are (during onResponseHead).
 */
export function forwardedHead(head: ResponseHead): Uint8Array {
  const b = head.bytes;
  const f = head.fields;
  const tokens = head.connectionTokens;
  const framing = head.framingFields;
  let out = head.statusEnd;
  for (let i = 0; i < head.count; i++) {
    const nameStart = f[4 * i]!;
    const valueEnd = f[4 * i + 3]!;
    // the framing and Connection fields the parser read: dropped without comparing names again
    if ((i < 32 && ((framing >>> i) & 1) === 1) || dropField(b, nameStart, f[4 * i + 1]!, tokens)) continue;
    const lineStart = nameStart - 2; // with the CRLF before it
    const n = valueEnd - lineStart;
    if (lineStart !== out) moveLine(b, out, lineStart, n);
    out += n;
  }
  return viewOf(b, head.start + 9, out - head.start - 9); // after "HTTP/1.x ": uWS writes its own
}

/** Move `n` bytes of `b` from `from` down to `to` (< from): the read buffer four bytes a step. */
function moveLine(b: Buffer, to: number, from: number, n: number): void {
  if (n > 64) {
    b.copyWithin(to, from, from + n);
    return;
  }
  // most lines are short: a loop is cheaper than copyWithin's call into the runtime; moving down,
  // each word is read before the write that could cover it
  let k = 0;
  if (b === READ_BUFFER) for (; k + 4 <= n; k += 4) READ_WORDS.setInt32(to + k, READ_WORDS.getInt32(from + k, true), true);
  for (; k < n; k++) b[to + k] = b[from + k]!;
}
