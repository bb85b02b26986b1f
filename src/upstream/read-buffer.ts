// Owns the one buffer a worker thread's plain backend sockets read into (net's `onread`): HTTP
// connections and WebSocket connections alike. A read is handled before the next one lands (libuv
// runs one socket's callback at a time, and nothing in it waits), so one buffer serves them all;
// whatever must outlive a read is copied out of it.

export const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);
