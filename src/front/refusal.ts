// Owns the one way to answer a request and close its connection so that uWebSockets.js parses no
// byte after it, wherever the answer is given: inside uWS's parse of a client read (the request
// handler, a body chunk) or later.
//
// Inside a parse, everything written waits in uWS's 16 KiB cork buffer until the whole read has
// been parsed, and end(body, true) only marks the connection to close then: a request pipelined
// behind the refused one in the same read is parsed, handled and forwarded first (a smuggled
// request). res.close() instead drops the corked answer. A body larger than the cork buffer makes
// uWS send what it holds at once; end(.., true) then finds nothing buffered, closes the socket,
// and uWS stops parsing the read (it checks for a closed socket after every request). The padding
// is spaces after the text, only on refusals of a request's framing given inside a parse: there
// the bytes after the head cannot be trusted to be a request.

import type { HttpResponse } from 'uWebSockets.js';

let inParse = false;

/** The front marks the code that runs inside uWS's parse of a client read. */
export function setInParse(on: boolean): void {
  inParse = on;
}

const CORK_BUFFER = 16 * 1024;
const PADDING = ' '.repeat(CORK_BUFFER + 1);

/**
 * Answer `status` (e.g. "400 Bad Request") with a plain-text body and close the connection right
 * after it. `clientCloses`: the request itself asked uWS to close (then uWS does not write the
 * Connection field, so it is written here). `stopParsing`: nothing after this request may be
 * parsed (its framing was refused). `hsts`: the listener's Strict-Transport-Security, or null.
 */
export function answerAndClose(res: HttpResponse, status: string, requestId: string, clientCloses: boolean, stopParsing: boolean, hsts: string | null, field: readonly [string, string] | null = null): void {
  res.cork(() => {
    res.writeStatus(status);
    if (hsts !== null) res.writeHeader('strict-transport-security', hsts);
    if (field !== null) res.writeHeader(field[0], field[1]);
    res.writeHeader('content-type', 'text/plain; charset=utf-8');
    if (requestId.length > 0) res.writeHeader('x-request-id', requestId);
    if (clientCloses) res.writeHeader('connection', 'close');
    res.end(inParse && stopParsing ? status + '\n' + PADDING : status + '\n', true);
  });
}
