// Owns the Downstream of one request served by uWebSockets.js: the engine's view of uWS's
// HttpRequest (lent for the handler only) and HttpResponse. Marks the code that runs inside
// uWS's parse of a client read (the handler, body chunks), where an answer that must stop the
// parse needs refusal.ts's care.

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Downstream, FieldVisitor } from '../proxy/downstream.js';
import { answerAndClose, setInParse } from './refusal.js';
import { remoteAddress } from './remote-address.js';

/** What a request knows of the listener it came in on; one object per listener, made at start. */
export interface ListenerFacts {
  /** `x-forwarded-proto: https\r\nx-forwarded-port: 443\r\n` (Downstream.listenerFields). */
  readonly forwardedFields: string;
  /** The Strict-Transport-Security value every answer carries, or null. */
  readonly hsts: string | null;
}

export function listenerFacts(tls: boolean, port: number, hstsSeconds: number | null): ListenerFacts {
  return {
    forwardedFields: `x-forwarded-proto: ${tls ? 'https' : 'http'}\r\nx-forwarded-port: ${port}\r\n`,
    hsts: hstsSeconds === null ? null : `max-age=${hstsSeconds}`,
  };
}

/** uWS's per-loop cork buffer (LoopData::CORK_BUFFER_SIZE). */
const CORK_BUFFER = 16 * 1024;
/** What uWS adds to a head (Date, its own name, Transfer-Encoding, the blank line) and to a chunk
 * (its size line and CRLFs), with room to spare. */
const HEAD_EXTRA = 512;
const CHUNK_EXTRA = 16;

export class UwsDownstream implements Downstream {
  private readonly res: HttpResponse;
  /** Valid only while the front's handler runs; null after. */
  private req: HttpRequest | null;
  private readonly listener: ListenerFacts;
  /** Bytes written inside the current cork (an estimate from above); -1 outside any cork. */
  private corked = -1;

  constructor(res: HttpResponse, req: HttpRequest, listener: ListenerFacts) {
    this.res = res;
    this.req = req;
    this.listener = listener;
  }

  /** The handler returned: uWS takes the request object back. */
  releaseRequest(): void {
    this.req = null;
  }

  method(): string {
    return this.req!.getCaseSensitiveMethod();
  }
  url(): string {
    return this.req!.getUrl();
  }
  query(): string | undefined {
    return this.req!.getQuery();
  }
  queryParameter(key: string): string | undefined {
    return this.req!.getQuery(key);
  }
  header(lowerName: string): string {
    return this.req!.getHeader(lowerName);
  }
  forEachField(visit: FieldVisitor): void {
    this.req!.forEach(visit);
  }
  clientAddress(): string {
    return remoteAddress(this.res);
  }
  listenerFields(): string {
    return this.listener.forwardedFields;
  }

  onAborted(handler: () => void): void {
    this.res.onAborted(handler);
  }
  onData(handler: (chunk: ArrayBuffer, last: boolean) => void): void {
    this.res.onData((chunk, last) => {
      setInParse(true);
      try {
        handler(chunk, last);
      } finally {
        setInParse(false);
      }
    });
  }
  onWritable(handler: (offset: number) => boolean): void {
    this.res.onWritable(handler);
  }

  cork(fn: () => void): void {
    if (this.corked >= 0) {
      fn(); // nested: uWS runs it inside the cork already open
      return;
    }
    this.corked = 0;
    try {
      this.res.cork(fn);
    } finally {
      this.corked = -1;
    }
  }
  writeHead(statusAndFields: string | Uint8Array): void {
    if (this.corked >= 0) this.corked += statusAndFields.length + HEAD_EXTRA;
    this.res.writeStatus(statusAndFields);
    const hsts = this.listener.hsts;
    if (hsts !== null) this.res.writeHeader('strict-transport-security', hsts);
  }
  writeHeader(name: string, value: string): void {
    if (this.corked >= 0) this.corked += name.length + value.length + 4;
    this.res.writeHeader(name, value);
  }
  write(chunk: Uint8Array): boolean {
    if (this.corked >= 0) this.corked += chunk.length + CHUNK_EXTRA;
    return this.res.write(chunk);
  }
  writeFits(length: number): boolean {
    return this.corked < 0 || this.corked + length + CHUNK_EXTRA <= CORK_BUFFER;
  }
  tryEnd(chunk: Uint8Array, total: number): [boolean, boolean] {
    return this.res.tryEnd(chunk, total);
  }
  end(body?: Uint8Array | string): void {
    this.res.end(body);
  }
  endWithoutBody(length?: number): void {
    // uWS's own endWithoutBody(length) leaves the response pending (0 of `length` bytes sent), so
    // the connection's next request was taken for a pipelined one and the connection closed: the
    // length is written as a field, and the response ended as one without a body
    if (length !== undefined) this.res.writeHeader('content-length', String(length));
    this.res.endWithoutBody();
  }
  writeOffset(): number {
    return this.res.getWriteOffset();
  }
  pause(): void {
    this.res.pause();
  }
  resume(): void {
    this.res.resume();
  }
  close(): void {
    this.res.close();
  }
  answerAndClose(statusLine: string, requestId: string, clientCloses: boolean, stopParsing: boolean): void {
    answerAndClose(this.res, statusLine, requestId, clientCloses, stopParsing, this.listener.hsts);
  }
}
