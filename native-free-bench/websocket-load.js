// The load of websocket.js, a process of its own:
//   websocket-load.js PORT echo CONNS WINDOW SIZE SECONDS  -> {"messages":N,"seconds":S}
//   websocket-load.js PORT idle N                          -> prints "open" once N are open, holds them 3 s
// Frames with corelb's own framing (dist/upstream/websocket-frames.js; run after npm run build).
import net from 'node:net';
import { encodeFrame, FrameReader, newKey } from '../dist/upstream/websocket-frames.js';

const BINARY = 2; // Opcode.Binary (a const enum: not in the compiled module)

const [port, mode, ...rest] = process.argv.slice(2).map((v, i) => (i === 1 ? v : Number(v)));

function open(onMessage) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    s.on('error', reject);
    let head = Buffer.alloc(0);
    const reader = new FrameReader({ onMessage, onPing: () => {}, onPong: () => {}, onClose: () => {}, onProtocolError: (c, w) => reject(new Error(w)) }, 64 * 1024 * 1024, false);
    s.on('data', (c) => {
      if (head === null) return reader.push(c);
      head = Buffer.concat([head, c]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!head.subarray(0, 12).toString().includes('101')) return reject(new Error('not upgraded: ' + head.toString()));
      const extra = head.subarray(end + 4);
      head = null;
      resolve(s);
      if (extra.length) reader.push(extra);
    });
    s.write(`GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${newKey()}\r\nsec-websocket-version: 13\r\n\r\n`);
  });
}

if (mode === 'echo') {
  const [conns, window, size, seconds] = rest;
  const payload = Buffer.alloc(size, 97);
  let messages = 0;
  let running = true;
  const sockets = [];
  for (let i = 0; i < conns; i++) {
    let s;
    s = await open(() => {
      messages++;
      if (running) s.write(encodeFrame(BINARY, payload, true));
    });
    sockets.push(s);
  }
  const t0 = performance.now();
  for (const s of sockets) for (let k = 0; k < window; k++) s.write(encodeFrame(BINARY, payload, true));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ messages, seconds: elapsed }));
  process.exit(0);
} else {
  const [n] = rest;
  const sockets = [];
  for (let i = 0; i < n; i += 100) sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => open(() => {})))));
  console.log('open');
  await new Promise((r) => setTimeout(r, 3000));
  console.log(JSON.stringify({ open: sockets.length }));
  process.exit(0);
}
