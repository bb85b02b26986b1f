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
  buffer: null;
  /** The socket of a write that went asynchronous, until libuv completes it. */
  socket: net.Socket | null;
}
interface StreamHandle {
  writeUtf8String(req: WriteReq, data: string): number;
  /** Bytes libuv holds that the kernel has not taken: a direct write's included, which the stream does not count. */
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

/** Whether writes here may go direct (the binding is there); else each takes socket.write. */
export const directWrites = binding !== null;

/**
 * Longest head written directly: Node tries a write at once only when the string's encoded form
 * fits its 16 KiB stack buffer (3 bytes a character reserved for UTF-8); longer ones take
 * socket.write.
 */
const MAX_DIRECT = 4096;

/** A write libuv finished later (the kernel took only part at first): a failure ends the socket. */
function onComplete(this: WriteReq, status: number): void {
  const socket = this.socket;
  this.socket = null;
  this.handle = null;
  if (status < 0 && socket !== null) socket.destroy(new Error(`write failed (${status})`));
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

/** The request object of the next direct write: free while every write since completed at once. */
let spare: WriteReq | null = binding === null ? null : newRequest();

/**
 * Write `data` (UTF-8) to the plain TCP `socket`, bypassing the stream when nothing is queued on
 * it, by the stream or by libuv; else (or without the binding) through socket.write. Errors end
 * the socket, as a failed socket.write does ('error', then 'close').
 */
export function writeDirect(socket: net.Socket, data: string): void {
  const handle = (socket as unknown as { _handle: StreamHandle | null })._handle;
  const req = spare;
  if (req === null || handle === null || data.length > MAX_DIRECT || socket.writableLength !== 0 || socket.connecting || handle.writeQueueSize !== 0) {
    socket.write(data);
    return;
  }
  req.handle = handle;
  const err = handle.writeUtf8String(req, data);
  if (err !== 0) {
    req.handle = null;
    socket.destroy(new Error(`write failed (${err})`));
    return;
  }
  if (binding!.streamBaseState[binding!.kLastWriteWasAsync] === 0) {
    req.handle = null;
    return;
  }
  // libuv holds this request until the rest is written: the next write gets a new one
  req.socket = socket;
  spare = newRequest();
}
