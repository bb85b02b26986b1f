// Owns what the request engine needs from the client side of one request (Pingora's downstream
// session): the request head, read while the front server's handler runs; the answer, written
// with the front's own framing; flow control both ways; and the events. One implementation per
// front server (src/front/uws-downstream.ts in production, so every call site stays
// monomorphic); test/unit/proxy/fake-downstream.ts in unit tests. Both run one conformance suite
// (test/unit/proxy/downstream-conformance.test.ts).

/** The fields of the request head, one call per field line, names lower-cased. */
export type FieldVisitor = (name: string, value: string) => void;

export interface Downstream {
  // ---- The request head. Readable only until the engine's `start` returns (the front lends it
  // for the duration of its handler): copy what is needed later.
  /** The method as the client sent it (case kept). */
  method(): string;
  /** The target's path, without the query. */
  url(): string;
  /** The raw query after '?' ('' for a bare '?'), or undefined when there is none. */
  query(): string | undefined;
  /** The decoded value of query parameter `key`, or undefined. */
  queryParameter(key: string): string | undefined;
  /** The first field named `lowerName`, or ''. */
  header(lowerName: string): string;
  forEachField(visit: FieldVisitor): void;
  /** The client's address as text for X-Forwarded-For: dotted quad or RFC 5952. */
  clientAddress(): string;
  /**
   * The upstream head's lines that the listener the request came in on adds, each ending CRLF:
   * `x-forwarded-proto: https\r\nx-forwarded-port: 443\r\n`. A fact of the listener, made once.
   */
  listenerFields(): string;

  // ---- Events; each registered at most once per request. No exception may escape a handler.
  /** The client went away, or the connection was closed: nothing may be written after this. */
  onAborted(handler: () => void): void;
  /** Request body bytes, lent for the call only; `last` on the final (possibly empty) chunk. */
  onData(handler: (chunk: ArrayBuffer, last: boolean) => void): void;
  /** The client can take more after a write said no; return false when still blocked. */
  onWritable(handler: (offset: number) => boolean): void;

  // ---- The answer
  /** Run `fn` with the writes to the client batched into one send. */
  cork(fn: () => void): void;
  /** The status line's rest and any field lines: "200 OK" or "200 OK\r\nname: value..." */
  writeHead(statusAndFields: string | Uint8Array): void;
  writeHeader(name: string, value: string): void;
  /** A body chunk of a response without a known length; false when the client is not taking it. */
  write(chunk: Uint8Array): boolean;
  /**
   * May a `write` of `length` bytes be made now? False inside a `cork` whose batch has no room
   * left for it: the engine then writes it in a cork of its own once this one is over (uWS drops
   * a write that overflows its cork buffer when the socket cannot take the buffered bytes).
   */
  writeFits(length: number): boolean;
  /** Part of a body of `total` bytes; [accepted, whole response sent]. */
  tryEnd(chunk: Uint8Array, total: number): [boolean, boolean];
  /** The body's last (or only) bytes, or none: the response is complete. */
  end(body?: Uint8Array | string): void;
  /** A response without a body; `length` is the Content-Length to report (HEAD, 304). */
  endWithoutBody(length?: number): void;
  /** Body bytes written so far, for `tryEnd` after `onWritable`. */
  writeOffset(): number;
  /** Stop / start reading the request body (backpressure towards the client). */
  pause(): void;
  resume(): void;
  /** Cut the connection at once; `onAborted` runs before this returns. */
  close(): void;
  /**
   * Answer with a short plain-text body and close the connection right after it. `statusLine`
   * is e.g. "400 Bad Request"; `clientCloses`: the request asked for close itself; `stopParsing`:
   * nothing after this request may be read (its framing was refused).
   */
  answerAndClose(statusLine: string, requestId: string, clientCloses: boolean, stopParsing: boolean): void;
}
