// Owns the one write that skips Node's stream machinery: a request head with no body, handed
// straight to the plain TCP socket's libuv handle. Through net.Socket.write the same bytes pass
// Writable's buffering, a write request object per call and an after-write tick; here they go
// to libuv's try-write in one native call. Used only when nothing is queued on the socket (so the
// bytes keep their order: libuv queues any later write behind an unfinished one); anywhere the
// internal binding is missing (another runtime, a future Node) every write takes socket.write.

import type net from 'node:net';

interface WriteReq {
  handle: unknown;
  oncomplete: (status: number) => void;
  async: boolean;
  bytes: number;
  buffer: null;
  socket: net.Socket | null;
}
interface StreamHandle {
  writeUtf8String(req: WriteReq, data: string): number;
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

/** A write libuv finished later (the kernel took only part at first): a failure ends the socket. */
function onComplete(this: WriteReq, status: number): void {
  const socket = this.socket;
  this.socket = null;
  if (status < 0 && socket !== null) socket.destroy(new Error(`write failed (${status})`));
}

/**
 * Write `data` (UTF-8) to the plain TCP `socket`, bypassing the stream when nothing is queued on
 * it; else (or without the binding) through socket.write. Errors end the socket, as a failed
 * socket.write does ('error', then 'close').
 */
export function writeDirect(socket: net.Socket, data: string): void {
  const handle = (socket as unknown as { _handle: StreamHandle | null })._handle;
  if (binding === null || handle === null || socket.writableLength !== 0 || socket.connecting) {
    socket.write(data);
    return;
  }
  const req = new binding.WriteWrap();
  req.handle = handle;
  req.oncomplete = onComplete;
  req.async = false;
  req.bytes = 0;
  req.buffer = null;
  req.socket = socket;
  const err = handle.writeUtf8String(req, data);
  if (err !== 0) {
    socket.destroy(new Error(`write failed (${err})`));
    return;
  }
  if (binding.streamBaseState[binding.kLastWriteWasAsync] === 0) req.socket = null;
}
