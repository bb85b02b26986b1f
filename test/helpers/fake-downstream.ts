// A Downstream without a network, for unit tests of the request engine: the request head is given,
// every write is recorded, and the test plays the client (body chunks, a slow reader that takes
// only so many bytes, going away). It behaves as the uWS adapter does where the engine can tell
// (close() runs onAborted at once; nothing may be written after the end); the shared conformance
// suite (test/unit/proxy/downstream-conformance.test.ts) holds both to that.
import type { Downstream, FieldVisitor } from '../../src/proxy/downstream.js';

export interface FakeRequest {
  method?: string;
  /** Path and optional query: "/a?b=1". */
  target?: string;
  /** Field lines in order, names as sent (the fake lower-cases them, as uWS does). */
  headers?: [string, string][];
  clientAddress?: string;
  /** What the listener adds (default: plain HTTP on port 8080). */
  listenerFields?: string;
}

export interface Answer {
  /** "200 OK" or "200 OK\r\nname: value..." as written, then writeHeader lines. */
  status: number;
  headers: [string, string][];
  body: Buffer;
  /** end / tryEnd completed the response. */
  complete: boolean;
  /** The Content-Length the answer declared (tryEnd's total, end's body, endWithoutBody's length); null when streamed or none. */
  contentLength: number | null;
  /** The connection was closed: cut, refused, or answered and closed. */
  closed: boolean;
  /** answerAndClose's stopParsing. */
  stopParsing: boolean | null;
}

export class FakeDownstream implements Downstream {
  private readonly req: Required<FakeRequest>;
  private abortedHandler: (() => void) | null = null;
  private dataHandler: ((chunk: ArrayBuffer, last: boolean) => void) | null = null;
  private writableHandler: ((offset: number) => boolean) | null = null;
  private statusText: string | null = null;
  private readonly fields: [string, string][] = [];
  private readonly chunks: Buffer[] = [];
  private offset = 0;
  private declared: number | null = null;
  private streamed = false;
  private done = false;
  private closedFlag = false;
  private stop: boolean | null = null;
  /** Bytes the client takes before a write reports backpressure (Infinity: all). */
  window = Infinity;
  paused = false;
  corked = 0;
  /** Bytes one cork may take, as uWS's cork buffer (Infinity: no limit); a write past it after other corked bytes is misuse. */
  corkRoom = Infinity;
  /** Bytes written in the open cork; -1 outside one. */
  private inCork = -1;
  /** Calls that reached the fake after the response ended (a bug in the engine). */
  readonly misuse: string[] = [];

  constructor(req: FakeRequest = {}) {
    this.req = { method: 'GET', target: '/', headers: [['Host', 'test']], clientAddress: '127.0.0.1', listenerFields: 'x-forwarded-proto: http\r\nx-forwarded-port: 8080\r\n', ...req };
  }

  // ---- the request head
  method(): string {
    return this.req.method;
  }
  url(): string {
    const q = this.req.target.indexOf('?');
    return q < 0 ? this.req.target : this.req.target.slice(0, q);
  }
  query(): string | undefined {
    const q = this.req.target.indexOf('?');
    return q < 0 ? undefined : this.req.target.slice(q + 1);
  }
  queryParameter(key: string): string | undefined {
    const q = this.query();
    return q === undefined ? undefined : (new URLSearchParams(q).get(key) ?? undefined);
  }
  header(lowerName: string): string {
    return this.req.headers.find(([k]) => k.toLowerCase() === lowerName)?.[1] ?? '';
  }
  forEachField(visit: FieldVisitor): void {
    for (const [k, v] of this.req.headers) visit(k.toLowerCase(), v);
  }
  listenerFields(): string {
    return this.req.listenerFields;
  }
  clientAddress(): string {
    return this.req.clientAddress;
  }

  // ---- events
  onAborted(handler: () => void): void {
    this.abortedHandler = handler;
  }
  onData(handler: (chunk: ArrayBuffer, last: boolean) => void): void {
    this.dataHandler = handler;
  }
  onWritable(handler: (offset: number) => boolean): void {
    this.writableHandler = handler;
  }

  // ---- the answer
  private check(what: string): boolean {
    if (this.done || this.closedFlag) {
      this.misuse.push(what);
      return false;
    }
    return true;
  }
  cork(fn: () => void): void {
    this.corked++;
    if (this.inCork >= 0) {
      fn();
      return;
    }
    this.inCork = 0;
    try {
      fn();
    } finally {
      this.inCork = -1;
    }
  }
  writeFits(length: number): boolean {
    return this.inCork < 0 || this.inCork + length <= this.corkRoom;
  }
  writeHead(statusAndFields: string | Uint8Array): void {
    if (!this.check('writeHead')) return;
    const text = typeof statusAndFields === 'string' ? statusAndFields : Buffer.from(statusAndFields).toString('latin1');
    const [line, ...rest] = text.split('\r\n');
    this.statusText = line!;
    for (const l of rest) {
      const c = l.indexOf(':');
      this.fields.push([l.slice(0, c).toLowerCase(), l.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
    }
  }
  writeHeader(name: string, value: string): void {
    if (!this.check('writeHeader')) return;
    this.statusText ??= '200 OK';
    this.fields.push([name.toLowerCase(), value]);
  }
  private take(chunk: Uint8Array): number {
    const room = Math.max(0, this.window - this.offset);
    const n = Math.min(room, chunk.length);
    this.chunks.push(Buffer.from(chunk.subarray(0, n)));
    this.offset += n;
    return n;
  }
  write(chunk: Uint8Array): boolean {
    if (!this.check('write')) return false;
    this.statusText ??= '200 OK';
    if (this.inCork >= 0) {
      // uWS sends a write larger than its cork buffer at once when nothing was corked before it;
      // after corked bytes, such a write is lost if the socket cannot take them
      if (this.inCork > 0 && this.inCork + chunk.length > this.corkRoom) this.misuse.push('write past the cork');
      this.inCork += chunk.length;
    }
    // as uWS: the bytes are kept even when the client is slow, and the answer says to wait
    this.chunks.push(Buffer.from(chunk));
    this.offset += chunk.length;
    this.streamed = true;
    return this.offset <= this.window;
  }
  tryEnd(chunk: Uint8Array, total: number): [boolean, boolean] {
    if (!this.check('tryEnd')) return [false, false];
    this.statusText ??= '200 OK';
    const n = this.take(chunk);
    this.declared = total;
    if (this.offset >= total) this.done = true;
    return [n === chunk.length, this.done];
  }
  end(body?: Uint8Array | string): void {
    if (!this.check('end')) return;
    this.statusText ??= '200 OK';
    if (body !== undefined) {
      const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
      this.chunks.push(b);
      this.offset += b.length;
    }
    if (!this.streamed && this.declared === null) this.declared = this.offset;
    this.done = true;
  }
  endWithoutBody(length?: number): void {
    if (!this.check('endWithoutBody')) return;
    this.statusText ??= '200 OK';
    this.declared = length ?? null;
    this.done = true;
  }
  writeOffset(): number {
    return this.offset;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.abortedHandler?.();
  }
  answerAndClose(statusLine: string, requestId: string, clientCloses: boolean, stopParsing: boolean): void {
    if (!this.check('answerAndClose')) return;
    this.statusText = statusLine;
    this.fields.push(['content-type', 'text/plain; charset=utf-8']);
    if (requestId.length > 0) this.fields.push(['x-request-id', requestId]);
    this.fields.push(['connection', 'close']);
    this.chunks.push(Buffer.from(statusLine + '\n'));
    this.done = true;
    this.closedFlag = true;
    this.stop = stopParsing;
  }

  // ---- the test plays the client
  /** A request body chunk arrives (copied into a fresh ArrayBuffer, as uWS lends one). */
  send(data: string | Buffer, last: boolean): void {
    if (this.dataHandler === null) throw new Error('FakeDownstream.send: no onData handler registered');
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    const ab = new ArrayBuffer(b.length);
    new Uint8Array(ab).set(b);
    this.dataHandler(ab, last);
  }
  get readsBody(): boolean {
    return this.dataHandler !== null;
  }
  /** The client goes away. */
  abort(): void {
    if (this.closedFlag || this.done) return;
    this.closedFlag = true;
    this.abortedHandler?.();
  }
  /** The slow client reads up to `window` more bytes; returns what onWritable said. */
  drain(window = Infinity): boolean {
    this.window = window;
    const h = this.writableHandler;
    return h === null ? true : h(this.offset);
  }
  get waitingForWritable(): boolean {
    return this.writableHandler !== null;
  }

  get answered(): boolean {
    return this.statusText !== null || this.done || this.closedFlag;
  }
  get answer(): Answer {
    const status = this.statusText === null ? 0 : Number(this.statusText.slice(0, 3));
    return {
      status,
      headers: [...this.fields],
      body: Buffer.concat(this.chunks),
      complete: this.done,
      contentLength: this.declared,
      closed: this.closedFlag,
      stopParsing: this.stop,
    };
  }
  header1(name: string): string | undefined {
    return this.fields.find(([k]) => k === name)?.[1];
  }
}
