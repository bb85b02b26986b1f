// Owns the one write that skips Node's stream machinery: a request head with no body, handed
// straight to the plain TCP socket's libuv handle. Through net.Socket.write the same bytes pass
// Writable's buffering, a new write request object per call (made from a native template) and an
// after-write tick; here they go to libuv's try-write in one native call. Node reads the request
// object only when the kernel did not take every byte at once (StreamBase::WriteString), so one
// object serves every write that completes at once, and a new one is made only after a write that
// went asynchronous kept it. Used only when nothing is queued on the socket (so the bytes keep
// their order: libuv queues any later write behind an unfinished one); anywhere the internal
// binding is missing (another runtime, a future Node) every write takes socket.write.

import type net from 'node:net';

interface WriteReq {
  handle: unknown;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  bytes: number;
  /** The bytes of a write that went asynchronous: libuv reads them until it completes. */
  buffer: Uint8Array | null;
  /** The socket of a write that went asynchronous, until libuv completes it. */
  socket: net.Socket | null;
}
interface StreamHandle {
  writeUtf8String(req: WriteReq, data: string): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  /** Bytes libuv holds that the kernel has not taken: direct writes' included, which the stream does not count. */
  readonly writeQueueSize: number;
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

function loadBinding(): StreamWrapBinding | null {
  try {
    const proc = process as unknown as { binding?: (name: string) => unknown };
    const b = proc.binding?.('stream_wrap') as Partial<StreamWrapBinding> | undefined;
    if (b && typeof b.WriteWrap === 'function' && b.streamBaseState instanceof Int32Array && typeof b.kLastWriteWasAsync === 'number') {
      return b as StreamWrapBinding;
    }
  } catch {
    // not available here: socket.write it is
  }
  return null;
}

const binding = loadBinding();

/**
 * Longest string written directly: Node tries a write at once only when the string's encoded form
 * fits its 16 KiB stack buffer (3 bytes a character reserved for UTF-8); longer ones take
 * socket.write.
 */
const MAX_DIRECT = 4096;

/**
 * A write libuv finished later (the kernel took only part at first): a failure ends the socket;
 * after bytes the caller lent, 'drain' tells it the socket's queue is empty again.
 */
function onComplete(this: WriteReq, status: number): void {
  const socket = this.socket;
  const lent = this.buffer !== null;
  this.socket = null;
  this.buffer = null;
  this.handle = null;
  if (socket === null) return;
  if (status < 0) socket.destroy(new Error(`write failed (${status})`));
  else if (lent && socket.writableLength === 0) socket.emit('drain');
}

function newRequest(): WriteReq {
  const req = new binding!.WriteWrap();
  req.oncomplete = onComplete;
  req.async = false;
  req.bytes = 0;
  req.buffer = null;
  req.socket = null;
  return req;
}

/** Whether writes here may go direct (the binding is there); else each takes socket.write. */
export const directWrites = binding !== null;

/** The request object of the next direct write: free while every write since completed at once. */
let spare: WriteReq | null = binding === null ? null : newRequest();

/** The handle of `socket` when a direct write may go now: nothing queued on it, by the stream or by libuv. */
function idleHandle(socket: net.Socket): StreamHandle | null {
  if (spare === null) return null;
  const handle = (socket as unknown as { _handle: StreamHandle | null })._handle;
  if (handle === null || socket.writableLength !== 0 || socket.connecting || handle.writeQueueSize !== 0) return null;
  spare.handle = handle;
  return handle;
}

/** After the native write: SENT, or KEPT with the request object handed to libuv. */
function settle(socket: net.Socket, err: number, lent: Uint8Array | null): number {
  const req = spare!;
  if (err !== 0) {
    req.handle = null;
    socket.destroy(new Error(`write failed (${err})`));
    return SENT;
  }
  if (binding!.streamBaseState[binding!.kLastWriteWasAsync] === 0) {
    req.handle = null;
    return SENT;
  }
  // libuv holds this request (and the bytes) until the rest is written: the next write gets a new one
  req.socket = socket;
  req.buffer = lent;
  spare = newRequest();
  return KEPT;
}

/** The bytes left (or the socket failed and is ending): the caller may reuse them. */
export const SENT = 0;
/** The kernel took part: libuv reads the bytes until it is done, then the socket emits 'drain'. */
export const KEPT = 1;
/** Not written: the socket had a queue (or no handle); write them with socket.write. */
export const NOT_WRITTEN = 2;

/**
 * Write `data` (UTF-8) to the plain TCP `socket`, bypassing the stream when nothing is queued on
 * it; else (or without the binding) through socket.write. Errors end the socket, as a failed
 * socket.write does ('error', then 'close').
 */
export function writeDirect(socket: net.Socket, data: string): void {
  const handle = data.length > MAX_DIRECT ? null : idleHandle(socket);
  if (handle === null) socket.write(data);
  else settle(socket, handle.writeUtf8String(spare!, data), null);
}

/**
 * Write `bytes` to the plain TCP `socket` the same way, when nothing is queued on it: SENT, KEPT
 * or NOT_WRITTEN.
 */
export function writeBytesDirect(socket: net.Socket, bytes: Uint8Array): number {
  const handle = idleHandle(socket);
  if (handle === null) return NOT_WRITTEN;
  return settle(socket, handle.writeBuffer(spare!, bytes), bytes);
}

/** Bytes of `socket`'s that libuv holds, the kernel not having taken them (direct writes' among them). */
export function queuedInLibuv(socket: net.Socket): number {
  // a TLS socket's handle (TLSWrap) has no such count: 0, as nothing is written to it directly
  const q = (socket as unknown as { _handle: StreamHandle | null })._handle?.writeQueueSize;
  return typeof q === 'number' ? q : 0;
}
