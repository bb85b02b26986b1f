// A fast origin for benchmarks, in its own process, on uWebSockets.js.
//
//   node native-free-bench/origin.js PORT[,PORT...] [HOST]
//
// One process, one uWS App listening on every port given (the `algorithms` scenario balances
// over three ports of this one process, so its CPU is still one process tree).
//
//   GET  /          -> 200, body "ok" (2 bytes), keep-alive
//   GET  /k/ANY     -> 200, body "ok" (paths for consistent-hash keys)
//   GET  /bytes/N   -> 200, N bytes of 'x', streamed with tryEnd/onWritable backpressure
//                      from one preallocated buffer (N may exceed the buffer: it is re-sliced)
//   POST /sink      -> consumes the body (any size, 1 MiB in the post-1MiB scenario), answers
//                      its length in decimal
//   anything else   -> 404
//
// Prints the single line `ready` on stdout once listening. SIGTERM/SIGINT -> exit 0.
// Every handler body is wrapped: a uWS handler that throws terminates the process.

import uWS from 'uWebSockets.js';

const ports = String(process.argv[2] ?? '').split(',').map(Number);
const host = process.argv[3] ?? '127.0.0.1';
if (ports.some((port) => !Number.isInteger(port) || port <= 0 || port > 65535)) {
  process.stderr.write('usage: node native-free-bench/origin.js PORT[,PORT...] [HOST]\n');
  process.exit(2);
}

const CHUNK = 256 * 1024;
// Every byte is the same, so any slice [0, n) is the right content for any position.
const BYTES = new Uint8Array(CHUNK).fill(0x78); // 'x'
const MAX_BYTES = 1024 * 1024 * 1024; // refuse absurd sizes (1 GiB)

function sendBytes(res, total) {
  let done = false;
  res.onAborted(() => {
    done = true;
  });
  if (total === 0) {
    res.end();
    return;
  }
  // Write from the current write offset until uWS reports backpressure (ok=false) or the
  // response is complete (done=true). The write offset is the number of body bytes uWS has
  // taken, so after a failed tryEnd we continue from there in onWritable.
  const pump = () => {
    while (!done) {
      const offset = res.getWriteOffset();
      const len = Math.min(CHUNK, total - offset);
      const [ok, responded] = res.tryEnd(BYTES.subarray(0, len), total);
      if (responded) {
        done = true;
        return true;
      }
      if (!ok) return false; // wait for onWritable
    }
    return true;
  };
  res.onWritable(() => {
    try {
      return pump();
    } catch (err) {
      process.stderr.write(`origin: onWritable: ${err && err.stack}\n`);
      return true;
    }
  });
  res.cork(pump);
}

const app = uWS.App();

app.get('/', (res) => {
  res.end('ok');
});

app.get('/k/*', (res) => {
  res.end('ok');
});

app.get('/bytes/:n', (res, req) => {
  try {
    const s = req.getParameter(0);
    const n = Number(s);
    if (s === '' || !Number.isInteger(n) || n < 0 || n > MAX_BYTES) {
      res.writeStatus('400 Bad Request').end('bad size\n');
      return;
    }
    sendBytes(res, n);
  } catch (err) {
    process.stderr.write(`origin: /bytes: ${err && err.stack}\n`);
    try {
      res.writeStatus('500 Internal Server Error').end();
    } catch {
      /* already aborted */
    }
  }
});

app.post('/sink', (res) => {
  try {
    let aborted = false;
    let total = 0;
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((chunk, isLast) => {
      total += chunk.byteLength;
      if (isLast && !aborted) {
        res.cork(() => {
          res.end(String(total));
        });
      }
    });
  } catch (err) {
    process.stderr.write(`origin: /sink: ${err && err.stack}\n`);
  }
});

app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end('not found\n');
});

const listenSockets = [];
for (const port of ports) {
  app.listen(host, port, (token) => {
    if (!token) {
      process.stderr.write(`origin: cannot listen on ${host}:${port}\n`);
      process.exit(1);
    }
    listenSockets.push(token);
    if (listenSockets.length === ports.length) process.stdout.write('ready\n');
  });
}

function stop() {
  for (const token of listenSockets.splice(0)) uWS.us_listen_socket_close(token);
  // Main thread, no workers: exiting with open uWS sockets is fine here.
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
