// A test backend in its own process (started by origin-process.ts through fork, so a test can
// SIGKILL it). argv: <id> <port>. Answers every request 200 `ok <id>` with `x-backend: <id>`, and
// /healthz 200. Modes, switched over IPC ({type:'mode', mode, delayMs, seq}):
//   ok        answer at once
//   hang      read the request, never answer (/healthz too)
//   error500  500 on every request (/healthz too)
//   delay     answer after delayMs
//   reset     read the request, then reset the connection (RST) without answering
// IPC out: {type:'listening', port} once bound; {type:'ack', seq, ...} for 'mode' and 'stats';
// {type:'stop'} closes everything and exits 0.
import http from 'node:http';

const id = process.argv[2] ?? 'origin';
const wantPort = Number(process.argv[3] ?? 0);

let mode = 'ok';
let delayMs = 0;
/** Requests seen, by method; health checks counted apart. */
const stats = { requests: 0, healthz: 0, byMethod: {} };
/** Responses held by `hang` (never answered; destroyed on stop). */
const held = new Set();

function send(msg) {
  if (process.connected) process.send(msg);
}

function answer(req, res, isHealth) {
  if (mode === 'hang') {
    held.add(res);
    res.on('close', () => held.delete(res));
    return;
  }
  if (mode === 'reset') {
    const s = req.socket;
    if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s.destroy();
    return;
  }
  const status = mode === 'error500' ? 500 : 200;
  const body = isHealth ? (status === 200 ? 'healthy\n' : 'unhealthy\n') : `${status === 200 ? 'ok' : 'error'} ${id}\n`;
  const reply = () => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-backend': id });
    res.end(body);
  };
  if (mode === 'delay' && delayMs > 0) setTimeout(reply, delayMs);
  else reply();
}

const server = http.createServer({ keepAlive: true, keepAliveTimeout: 120_000, headersTimeout: 60_000, requestTimeout: 0 }, (req, res) => {
  const isHealth = req.url === '/healthz';
  if (isHealth) stats.healthz++;
  else {
    stats.requests++;
    stats.byMethod[req.method] = (stats.byMethod[req.method] ?? 0) + 1;
  }
  req.on('error', () => undefined);
  res.on('error', () => undefined);
  // read the whole request first (every mode answers only after that)
  req.resume();
  req.once('end', () => answer(req, res, isHealth));
});
server.keepAliveTimeout = 120_000;
server.on('clientError', (_err, socket) => socket.destroy());

function listen(attempt) {
  server.once('error', (err) => {
    // restart on the same port: the old process's socket may still be going away
    if (err.code === 'EADDRINUSE' && attempt < 50) setTimeout(() => listen(attempt + 1), 100);
    else {
      send({ type: 'error', message: String(err.message) });
      process.exit(1);
    }
  });
  server.listen({ host: '127.0.0.1', port: wantPort }, () => {
    server.removeAllListeners('error');
    server.on('error', () => undefined);
    send({ type: 'listening', port: server.address().port });
  });
}

process.on('message', (m) => {
  if (m === null || typeof m !== 'object') return;
  if (m.type === 'mode') {
    mode = m.mode;
    delayMs = Number(m.delayMs ?? 0);
    send({ type: 'ack', seq: m.seq, mode });
  } else if (m.type === 'stats') {
    send({ type: 'ack', seq: m.seq, stats });
  } else if (m.type === 'stop') {
    for (const r of held) r.destroy();
    server.closeAllConnections?.();
    server.close(() => process.exit(0));
  }
});
// the test process went away: do not linger
process.on('disconnect', () => process.exit(0));

listen(0);
