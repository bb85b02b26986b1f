// The relay's framing work alone, per message, in one thread (no sockets): what corelb's backend
// side does for each message of an echo (src/upstream/websocket-frames.ts as built in DIST).
//   encode: 64 small (32 B) client messages masked into the frames of one event-loop turn
//           (FrameWriter, one buffer taken per turn; encodeFrame per message where DIST has no FrameWriter)
//   decode: one read of 64 small unmasked backend frames, each payload handed on and dropped
//   64 KiB: one message masked and encoded, one read back
//   node native-free-bench/websocket-frames.js [DIST]   (DIST: a built dist folder, default ./dist)
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = path.resolve(process.argv[2] ?? 'dist');
const f = await import(pathToFileURL(path.join(dist, 'upstream', 'websocket-frames.js')).href);
const BINARY = 2;
const small = Buffer.alloc(32, 97);
const large = Buffer.alloc(65536, 97);
let sink = 0;
const handler = { onMessage: (d) => (sink += d.length), onPing: () => {}, onPong: () => {}, onClose: () => {}, onProtocolError: (c, w) => { throw new Error(w); } };

function time(name, perRound, rounds, fn) {
  for (let i = 0; i < rounds / 10; i++) fn(); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0) / (rounds * perRound);
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(7)} ns per message`);
}

const writer = f.FrameWriter ? new f.FrameWriter(true) : null;
time('encode 64 x 32 B, masked, one turn', 64, 20_000, () => {
  if (writer) {
    for (let i = 0; i < 64; i++) writer.frame(BINARY, new Uint8Array(small.buffer, small.byteOffset, 32));
    sink += writer.take().length;
  } else for (let i = 0; i < 64; i++) sink += f.encodeFrame(BINARY, new Uint8Array(small.buffer, small.byteOffset, 32), true).length;
});
const read = Buffer.concat(Array.from({ length: 64 }, () => f.encodeFrame(BINARY, small, false)));
const reader = new f.FrameReader(handler, 1 << 24, false, false);
time('decode 64 x 32 B in one read', 64, 20_000, () => reader.push(read));
time('encode 64 KiB, masked', 1, 20_000, () => {
  if (writer) {
    writer.frame(BINARY, large);
    sink += writer.take().length;
  } else sink += f.encodeFrame(BINARY, large, true).length;
});
const bigFrame = f.encodeFrame(BINARY, large, false);
time('decode 64 KiB in one read', 1, 20_000, () => reader.push(bigFrame));
if (sink === 0) console.log('');
