// Owns the proxy's error vocabulary, as one table (undici's errors, Pingora's ErrorType): every
// stable code with its status and status text, where the fault lies, whether a retry may save the
// request, which failure counter of the backend it feeds, and what becomes of the client's
// connection. The retry decision is data on the error, not control flow. No other file maps codes
// to statuses or texts.

import { FailureKind } from './shared/layout.js';

export type ErrorSource = 'upstream' | 'downstream' | 'internal';

/**
 * May the request be sent again, to another backend?
 *   'safe':       nothing reached the backend (connect failed): any request may go elsewhere
 *   'idempotent': the request was sent but no response began: only an idempotent request
 *                 without a body (which the proxy does not keep) may be repeated
 *   'never':      the backend may have acted on it, or the fault is not the backend's
 */
export type Retry = 'safe' | 'idempotent' | 'never';

/**
 * What the client's connection becomes after the error answer:
 *   'keep':    kept alive (a body still arriving is read and discarded first: lingering close)
 *   'close':   closed after the answer (the exchange itself is broken)
 *   'refuse':  closed after the answer with nothing after the request parsed: its framing was
 *              refused, so the bytes after its head cannot be trusted to be a request
 */
export type AfterError = 'keep' | 'close' | 'refuse';

export interface ErrorSpec {
  readonly status: number;
  /** The status line's text after the code, and the plain-text body of corelb's answer. */
  readonly text: string;
  readonly source: ErrorSource;
  /** The retry rule when the code is raised without one of its own. */
  readonly retry: Retry;
  /** The backend failure counter it adds to (passive checks judge them); -1: none. */
  readonly failure: FailureKind | -1;
  readonly connection: AfterError;
  /** "STATUS TEXT", as written after "HTTP/1.1 ". */
  readonly line: string;
}

function spec(status: number, text: string, source: ErrorSource, retry: Retry, failure: FailureKind | -1, connection: AfterError): ErrorSpec {
  return Object.freeze({ status, text, source, retry, failure, connection, line: status + ' ' + text });
}

export const ERRORS = Object.freeze({
  /** Could not connect to the backend: nothing was sent. */
  CLB_ERR_CONNECT: spec(502, 'Bad Gateway', 'upstream', 'safe', FailureKind.Connect, 'keep'),
  /** The TLS handshake with an https:// backend failed (its certificate did not verify, a wrong
   * name, no common version): nothing was sent; a connect failure for passive checks. */
  CLB_ERR_TLS: spec(502, 'Bad Gateway', 'upstream', 'safe', FailureKind.Connect, 'keep'),
  /** No connection within timeouts.connect (504, as nginx). */
  CLB_ERR_CONNECT_TIMEOUT: spec(504, 'Gateway Timeout', 'upstream', 'safe', FailureKind.ConnectTimeout, 'keep'),
  /** Connection reset or closed before a complete response. */
  CLB_ERR_RESET: spec(502, 'Bad Gateway', 'upstream', 'idempotent', FailureKind.Reset, 'keep'),
  /** The backend's bytes were not valid HTTP/1.1. */
  CLB_ERR_INVALID_RESPONSE: spec(502, 'Bad Gateway', 'upstream', 'never', FailureKind.InvalidResponse, 'keep'),
  /** No response headers within timeouts.response, or silence that long mid-body. */
  CLB_ERR_RESPONSE_TIMEOUT: spec(504, 'Gateway Timeout', 'upstream', 'never', FailureKind.ResponseTimeout, 'keep'),
  /** Nothing to pick: every backend down or draining. */
  CLB_ERR_NO_BACKEND: spec(503, 'Service Unavailable', 'internal', 'never', -1, 'keep'),
  /** Every backend stayed at max_connections_per_backend for timeouts.queue. */
  CLB_ERR_QUEUE_TIMEOUT: spec(503, 'Service Unavailable', 'internal', 'never', -1, 'keep'),
  CLB_ERR_NO_ROUTE: spec(404, 'Not Found', 'internal', 'never', -1, 'keep'),
  /** `Cache-Control: only-if-cached` and no fresh stored answer (RFC 9111 §5.2.1.7). */
  CLB_ERR_NOT_CACHED: spec(504, 'Gateway Timeout', 'internal', 'never', -1, 'keep'),
  CLB_ERR_BODY_TOO_LARGE: spec(413, 'Content Too Large', 'downstream', 'never', -1, 'keep'),
  /** The request's framing was refused (Content-Length, Transfer-Encoding). */
  CLB_ERR_BAD_REQUEST: spec(400, 'Bad Request', 'downstream', 'never', -1, 'refuse'),
  /** A WebSocket handshake of a version other than 13 (or none): RFC 6455 §4.4's 426, with the version corelb speaks. */
  CLB_ERR_WEBSOCKET_VERSION: spec(426, 'Upgrade Required', 'downstream', 'never', -1, 'close'),
  /** A Transfer-Encoding other than chunked: 501, as nginx. */
  CLB_ERR_UNKNOWN_CODING: spec(501, 'Not Implemented', 'downstream', 'never', -1, 'refuse'),
  /** In flight when timeouts.drain ended: cut by corelb, not by the client. */
  CLB_ERR_DRAIN_TIMEOUT: spec(503, 'Service Unavailable', 'internal', 'never', -1, 'close'),
  /** The client went away first (499, as nginx logs it). */
  CLB_ERR_CLIENT_ABORTED: spec(499, 'Client Closed Request', 'downstream', 'never', -1, 'close'),
  /** A bug inside corelb, caught. */
  CLB_ERR_INTERNAL: spec(500, 'Internal Server Error', 'internal', 'never', -1, 'close'),
} satisfies Record<string, ErrorSpec>);

export type ErrorCode = keyof typeof ERRORS;

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  readonly retry: Retry;
  constructor(code: ErrorCode, message: string, retry: Retry = ERRORS[code].retry) {
    super(message);
    this.code = code;
    this.source = ERRORS[code].source;
    this.retry = retry;
  }
}

/** The status a client sees for `code`. */
export function statusFor(code: ErrorCode): number {
  return ERRORS[code].status;
}

/** The status line after "HTTP/1.1 " for `code`, e.g. "502 Bad Gateway"; also its answer's body. */
export function statusLine(code: ErrorCode): string {
  return ERRORS[code].line;
}
