// Owns the translation of a client request head into the upstream request head: hop-by-hop
// headers dropped, X-Forwarded-* (proto and port are the listener's) and X-Request-Id added,
// Host kept. Runs synchronously inside the uWS handler (request data is only valid there); one
// module-level collector, so no closure is allocated per request. The strings it gathers go into
// the caller's fresh ClientHead, not into module variables: a new string stored into the module's
// context (old generation) takes the write barrier's slow path, into a young object it does not.

import { listElements } from '../http-tokens.js';

/** What the head is read from: the client side of the request (a Downstream), while readable. */
export interface RequestFields {
  query(): string | undefined;
  /** x-forwarded-proto and x-forwarded-port lines of the listener (see Downstream). */
  listenerFields(): string;
  forEachField(visit: (name: string, value: string) => void): void;
}

export interface ClientHead {
  /** The upstream request head, ending with the blank line. */
  head: string;
  host: string;
  /** -1 when absent, else the one value (equal duplicate lines are one). See `framing`. */
  contentLength: number;
  chunked: boolean;
  /** Why the request's framing is refused (FramingProblem.None: it is not). */
  framing: FramingProblem;
  /** The first Connection field is 5 bytes long: uWS then ends the connection after the answer
   * (it reads `close` by its length), so the answer must say `Connection: close`. */
  closes: boolean;
  requestId: string;
  /** The client's own X-Forwarded-For values, joined (while the fields are read). */
  forwardedFor: string;
}

/** A ClientHead to fill: one per request (see the module's first lines). */
export function newClientHead(): ClientHead {
  return { head: '', host: '', contentLength: -1, chunked: false, framing: FramingProblem.None, closes: false, requestId: '', forwardedFor: '' };
}

/** A request whose body framing could be read two ways is refused, and its connection closed. */
export const enum FramingProblem {
  None = 0,
  /** Content-Length not made of digits, or two different values. */
  BadLength = 1,
  /** Transfer-Encoding on more than one line. */
  RepeatedCoding = 2,
  /** Both Content-Length and Transfer-Encoding. */
  LengthAndCoding = 3,
  /** A transfer coding other than exactly `chunked` (answered 501, as nginx does). */
  UnknownCoding = 4,
}

const IDLE = newClientHead();
/** The head being read, for the collector: set by readFields, back to IDLE once built. */
let into: ClientHead = IDLE;
let contentLength = -1;
let lengthLines = 0;
let chunked = false;
let codingLines = 0;
let problem = FramingProblem.None;
let closes = false;
let connectionSeen = false;
/** Tokens of Connection (other than close, keep-alive) known before the fields are read. */
let connectionTokens: string[] | null = null;
/** Tokens of Connection found while reading the fields. */
let namedTokens: string[] | null = null;

/**
 * Reads one client field (uWS hands them lower-cased): the ones that frame the request or name
 * other fields are read, the hop-by-hop ones and those corelb writes itself are dropped, the rest
 * forwarded. A field is found by its name's length and first byte before any string compare: uWS
 * makes a new string per name, and comparing it with each literal in turn took about 25 ns a
 * field (a browser's request carries 8-12), against about 5 now (micro-benchmark).
 */
function collect(key: string, value: string): void {
  const c0 = key.charCodeAt(0);
  switch (key.length) {
    case 2:
      if (key === 'te') return;
      break;
    case 4:
      if (c0 === 104 && key === 'host') into.host = value; // and forwarded
      break;
    case 6:
      if (c0 === 101 && key === 'expect') return; // the front answers 100-continue itself and streams the body
      break;
    case 7:
      if ((c0 === 116 && key === 'trailer') || (c0 === 117 && key === 'upgrade')) return;
      break;
    case 10:
      if (c0 === 99 && key === 'connection') {
        connectionField(value);
        return;
      }
      if (c0 === 107 && key === 'keep-alive') return;
      break;
    case 12:
      if (c0 === 120 && key === 'x-request-id') into.requestId = value; // and forwarded
      break;
    case 14:
      if (c0 === 99 && key === 'content-length') {
        lengthField(value);
        return; // forwarded once, as read (equal duplicate lines collapse into one)
      }
      break;
    case 15:
      if (c0 === 120 && key === 'x-forwarded-for') {
        const xff = into.forwardedFor;
        into.forwardedFor = xff.length === 0 ? value : xff + ', ' + value;
        return;
      }
      break;
    case 16:
      if (c0 === 120 && (key === 'x-forwarded-host' || key === 'x-forwarded-port')) return;
      break;
    case 17:
      if (c0 === 116 && key === 'transfer-encoding') {
        codingField(value);
        return;
      }
      if (c0 === 120 && key === 'x-forwarded-proto') return;
      break;
  }
  if (c0 === 112 && key.length > 6 && key.startsWith('proxy-')) return;
  if (connectionTokens !== null && connectionTokens.includes(key)) return;
  into.head += key + ': ' + value + '\r\n';
}

function lengthField(value: string): void {
  // uWS strips bytes below 0x21 and from 0x80 around a value before corelb sees it (see README,
  // the front server's limits); what is left must be digits only
  let n = 0;
  let ok = value.length > 0 && value.length <= 15;
  for (let i = 0; ok && i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) ok = false;
    else n = n * 10 + (c - 48);
  }
  if (!ok || (lengthLines > 0 && contentLength !== n)) problem = FramingProblem.BadLength;
  contentLength = n;
  lengthLines++;
}

function codingField(value: string): void {
  if (++codingLines > 1) problem = FramingProblem.RepeatedCoding;
  else if (value.length === 7 && (value === 'chunked' || value.toLowerCase() === 'chunked')) chunked = true;
  else if (problem === FramingProblem.None) problem = FramingProblem.UnknownCoding;
}

function connectionField(value: string): void {
  if (!connectionSeen) {
    // uWS's own test for `close` is the length of the first Connection field
    connectionSeen = true;
    closes = value.length === 5;
  }
  // fields it names are dropped too: found here, they make buildRequestHead read the fields again
  if (value !== 'keep-alive' && value !== 'close') namedTokens = namedFields(value, namedTokens);
}

/** The elements of a Connection value other than close and keep-alive, appended to `tokens`. */
function namedFields(value: string, tokens: string[] | null): string[] | null {
  const all = listElements(value);
  if (all !== null) for (const t of all) if (t !== 'close' && t !== 'keep-alive') (tokens ??= []).push(t);
  return tokens;
}

/** Read the client's fields into `head` and the module state, after the request line `line`. */
function readFields(req: RequestFields, line: string, head: ClientHead): void {
  into = head;
  head.head = line;
  head.host = '';
  head.forwardedFor = '';
  head.requestId = '';
  contentLength = -1;
  lengthLines = 0;
  chunked = false;
  codingLines = 0;
  problem = FramingProblem.None;
  closes = false;
  connectionSeen = false;
  namedTokens = null;
  req.forEachField(collect);
}

/**
 * Build the upstream head for `req` (`path` is its getUrl()) into `result`, a fresh ClientHead.
 * `remoteAddress` is appended to X-Forwarded-For ('' appends nothing); `newRequestId` is used
 * when the client sent none.
 */
export function buildRequestHead(req: RequestFields, method: string, path: string, remoteAddress: string, newRequestId: () => string, result: ClientHead): void {
  let line = method + ' ' + path;
  const query = req.query();
  if (query !== undefined) line += '?' + query; // '' for a bare '?', which is kept too
  line += ' HTTP/1.1\r\n';
  connectionTokens = null;
  readFields(req, line, result);
  if (namedTokens !== null) {
    // Connection named other fields: read again, now dropping them wherever they stood
    connectionTokens = namedTokens;
    readFields(req, line, result);
    connectionTokens = null;
  }
  let head = result.head;
  if (result.requestId.length === 0) {
    const id = newRequestId();
    result.requestId = id;
    head += 'x-request-id: ' + id + '\r\n';
  }
  // remoteAddress '' (forwarded_for: false): the client's own X-Forwarded-For, if any, unchanged
  const xff = result.forwardedFor;
  if (remoteAddress.length > 0) head += 'x-forwarded-for: ' + (xff.length === 0 ? remoteAddress : xff + ', ' + remoteAddress) + '\r\n';
  else if (xff.length > 0) head += 'x-forwarded-for: ' + xff + '\r\n';
  head += req.listenerFields();
  if (result.host.length > 0) head += 'x-forwarded-host: ' + result.host + '\r\n';
  if (codingLines > 0 && lengthLines > 0) problem = FramingProblem.LengthAndCoding; // a smuggling attempt
  // one framing line, canonical: the front de-chunks the client's body and it is re-chunked
  // towards the backend
  if (chunked) head += 'transfer-encoding: chunked\r\n';
  else if (lengthLines > 0 && problem === FramingProblem.None) head += 'content-length: ' + contentLength + '\r\n';
  result.head = head + '\r\n';
  result.contentLength = contentLength;
  result.chunked = chunked;
  result.framing = problem;
  result.closes = closes;
  into = IDLE; // the request's strings are not kept past it
}
