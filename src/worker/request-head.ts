// Owns the translation of a client request head into the upstream request head: hop-by-hop
// headers dropped, X-Forwarded-* and X-Request-Id added, Host kept. Runs synchronously inside
// the uWS handler (request data is only valid there); one module-level collector, so no closure
// is allocated per request.

import type { HttpRequest } from 'uWebSockets.js';

export interface ClientHead {
  /** The upstream request head, ending with the blank line. */
  head: string;
  host: string;
  /** -1 when absent. -2 when invalid. */
  contentLength: number;
  chunked: boolean;
  /** Transfer-Encoding present but not exactly chunked. */
  badTransferEncoding: boolean;
  requestId: string;
}

let out = '';
let host = '';
let xff = '';
let requestId = '';
let contentLength = -1;
let chunked = false;
let badTe = false;
/** Tokens of Connection (other than close, keep-alive) known before the fields are read. */
let connectionTokens: string[] | null = null;
/** Tokens of Connection found while reading the fields. */
let namedTokens: string[] | null = null;

function isHopByHop(key: string): boolean {
  switch (key.length) {
    case 2:
      return key === 'te';
    case 6:
      return key === 'expect'; // the front answers 100-continue itself and streams the body
    case 7:
      return key === 'trailer' || key === 'upgrade';
    case 10:
      return key === 'connection' || key === 'keep-alive';
    case 16:
      return key === 'x-forwarded-host' || key.startsWith('proxy-');
    case 17:
      return key === 'transfer-encoding' || key === 'x-forwarded-proto' || key.startsWith('proxy-');
    default:
      return key.length > 6 && key.startsWith('proxy-');
  }
}

function collect(key: string, value: string): void {
  switch (key) {
    case 'host':
      host = value;
      break;
    case 'x-forwarded-for':
      xff = xff.length === 0 ? value : xff + ', ' + value;
      return;
    case 'x-request-id':
      requestId = value;
      break;
    case 'content-length': {
      let n = 0;
      let ok = value.length > 0 && value.length <= 15;
      for (let i = 0; ok && i < value.length; i++) {
        const c = value.charCodeAt(i);
        if (c < 48 || c > 57) ok = false;
        else n = n * 10 + (c - 48);
      }
      contentLength = !ok || (contentLength >= 0 && contentLength !== n) ? -2 : n;
      break;
    }
    case 'transfer-encoding':
      if (value === 'chunked' || value.toLowerCase() === 'chunked') chunked = true;
      else badTe = true;
      return;
    case 'connection':
      // fields it names are dropped too: found here, they make buildRequestHead read the fields again
      if (value !== 'keep-alive' && value !== 'close') namedTokens = parseConnection(value, namedTokens);
      return;
  }
  if (isHopByHop(key)) return;
  if (connectionTokens !== null && connectionTokens.includes(key)) return;
  out += key + ': ' + value + '\r\n';
}

function parseConnection(value: string, tokens: string[] | null): string[] | null {
  for (const raw of value.split(',')) {
    const t = raw.trim().toLowerCase();
    if (t.length > 0 && t !== 'close' && t !== 'keep-alive') (tokens ??= []).push(t);
  }
  return tokens;
}

/** Read the client's fields into the module state, after the request line `line`. */
function readFields(req: HttpRequest, line: string): void {
  out = line;
  host = '';
  xff = '';
  requestId = '';
  contentLength = -1;
  chunked = false;
  badTe = false;
  namedTokens = null;
  req.forEach(collect);
}

/**
 * Build the upstream head for `req` (`path` is its getUrl()). `remoteAddress` is appended to
 * X-Forwarded-For ('' appends nothing); `newRequestId` is used when the client sent none.
 */
export function buildRequestHead(req: HttpRequest, method: string, path: string, remoteAddress: string, newRequestId: () => string, result: ClientHead): void {
  let line = method + ' ' + path;
  const query = req.getQuery();
  if (query !== undefined) line += '?' + query; // '' for a bare '?', which is kept too
  line += ' HTTP/1.1\r\n';
  connectionTokens = null;
  readFields(req, line);
  if (namedTokens !== null) {
    // Connection named other fields: read again, now dropping them wherever they stood
    connectionTokens = namedTokens;
    readFields(req, line);
    connectionTokens = null;
  }
  if (requestId.length === 0) {
    requestId = newRequestId();
    out += 'x-request-id: ' + requestId + '\r\n';
  }
  // remoteAddress '' (forwarded_for: false): the client's own X-Forwarded-For, if any, unchanged
  if (remoteAddress.length > 0) out += 'x-forwarded-for: ' + (xff.length === 0 ? remoteAddress : xff + ', ' + remoteAddress) + '\r\n';
  else if (xff.length > 0) out += 'x-forwarded-for: ' + xff + '\r\n';
  out += 'x-forwarded-proto: http\r\n';
  if (host.length > 0) out += 'x-forwarded-host: ' + host + '\r\n';
  if (chunked) {
    // the front de-chunks the client's body; it is re-chunked towards the backend
    if (contentLength !== -1) contentLength = -2; // both: a smuggling attempt
    out += 'transfer-encoding: chunked\r\n';
  }
  out += '\r\n';
  result.head = out;
  result.host = host;
  result.contentLength = contentLength;
  result.chunked = chunked;
  result.badTransferEncoding = badTe;
  result.requestId = requestId;
  out = '';
  xff = '';
}
