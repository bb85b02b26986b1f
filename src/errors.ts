// Owns the proxy's error vocabulary: stable string codes, where the fault lies, and whether a
// retry may save the request. The retry decision is data on the error (Pingora), not control flow.

export type ErrorSource = 'upstream' | 'downstream' | 'internal';

export type ErrorCode =
  | 'CLB_ERR_CONNECT' // could not connect to the backend: nothing was sent
  | 'CLB_ERR_CONNECT_TIMEOUT'
  | 'CLB_ERR_RESET' // connection reset or closed before a complete response
  | 'CLB_ERR_INVALID_RESPONSE' // the backend's bytes were not valid HTTP/1.1
  | 'CLB_ERR_RESPONSE_TIMEOUT' // no response headers within timeouts.response
  | 'CLB_ERR_NO_BACKEND' // nothing to pick
  | 'CLB_ERR_NO_ROUTE'
  | 'CLB_ERR_BODY_TOO_LARGE'
  | 'CLB_ERR_BAD_REQUEST'
  | 'CLB_ERR_CLIENT_ABORTED'
  | 'CLB_ERR_INTERNAL';

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  /** True when no byte of the request reached the backend, or the request may be repeated safely. */
  readonly retry: boolean;
  constructor(code: ErrorCode, source: ErrorSource, retry: boolean, message: string) {
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
      return 503;
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
