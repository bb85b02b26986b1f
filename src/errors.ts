// Owns the proxy's error vocabulary: stable string codes, where the fault lies, and whether a
// retry may save the request. The retry decision is data on the error (Pingora), not control flow.

export type ErrorSource = 'upstream' | 'downstream' | 'internal';

/**
 * May the request be sent again, to another backend?
 *   'safe':       nothing reached the backend (connect failed): any request may go elsewhere
 *   'idempotent': the request was sent but no response began: only an idempotent request
 *                 without a body (which the proxy does not keep) may be repeated
 *   'never':      the backend may have acted on it, or the fault is not the backend's
 */
export type Retry = 'safe' | 'idempotent' | 'never';

export type ErrorCode =
  | 'CLB_ERR_CONNECT' // could not connect to the backend: nothing was sent
  | 'CLB_ERR_CONNECT_TIMEOUT'
  | 'CLB_ERR_RESET' // connection reset or closed before a complete response
  | 'CLB_ERR_INVALID_RESPONSE' // the backend's bytes were not valid HTTP/1.1
  | 'CLB_ERR_RESPONSE_TIMEOUT' // no response headers within timeouts.response
  | 'CLB_ERR_NO_BACKEND' // nothing to pick
  | 'CLB_ERR_QUEUE_TIMEOUT' // every backend stayed at max_connections_per_backend for timeouts.queue
  | 'CLB_ERR_NO_ROUTE'
  | 'CLB_ERR_BODY_TOO_LARGE'
  | 'CLB_ERR_BAD_REQUEST' // framing refused (the connection is closed), or a body over a limit's framing
  | 'CLB_ERR_UNKNOWN_CODING' // a Transfer-Encoding other than chunked: 501, as nginx (the connection is closed)
  | 'CLB_ERR_DRAIN_TIMEOUT' // in flight when timeouts.drain ended: cut by corelb, not by the client
  | 'CLB_ERR_CLIENT_ABORTED'
  | 'CLB_ERR_INTERNAL';

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  readonly retry: Retry;
  constructor(code: ErrorCode, source: ErrorSource, retry: Retry, message: string) {
    super(message);
    this.code = code;
    this.source = source;
    this.retry = retry;
  }
}

/** The status a client sees for each error code, and its short plain-text body. */
export function statusFor(code: ErrorCode): number {
  switch (code) {
    case 'CLB_ERR_CONNECT':
    case 'CLB_ERR_RESET':
    case 'CLB_ERR_INVALID_RESPONSE':
      return 502;
    case 'CLB_ERR_CONNECT_TIMEOUT': // as nginx: a timeout is a 504, whichever phase it hit
    case 'CLB_ERR_RESPONSE_TIMEOUT':
      return 504;
    case 'CLB_ERR_NO_BACKEND':
    case 'CLB_ERR_QUEUE_TIMEOUT':
    case 'CLB_ERR_DRAIN_TIMEOUT':
      return 503;
    case 'CLB_ERR_UNKNOWN_CODING':
      return 501;
    case 'CLB_ERR_NO_ROUTE':
      return 404;
    case 'CLB_ERR_BODY_TOO_LARGE':
      return 413;
    case 'CLB_ERR_BAD_REQUEST':
      return 400;
    case 'CLB_ERR_CLIENT_ABORTED':
      return 499;
    case 'CLB_ERR_INTERNAL':
      return 500;
  }
}
