// Peer for the benchmark: node-http-proxy (`http-proxy` 1.x) on node:http, one process.
//
//   node native-free-bench/peers/node-http-proxy.js PORT ORIGIN_URL
//
// Upstream keep-alive through an http.Agent (keepAlive, at most 64 idle sockets kept, like
// nginx's `keepalive 64`), the client's Connection header not forwarded; X-Forwarded-* added
// (xfwd), as corelb adds them. Client keep-alive idle timeout 60 s (corelb's timeouts.idle
// default), so the idle-10k connections stay open.
// Prints `ready` once listening. SIGTERM/SIGINT -> exit 0.
//
// `http-proxy` is a CommonJS package and a dev dependency; it is loaded with a bare specifier
// through createRequire, so NODE_PATH can point at another install too.

import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const httpProxy = require('http-proxy');

const port = Number(process.argv[2]);
const target = process.argv[3];
if (!Number.isInteger(port) || !target) {
  process.stderr.write('usage: node native-free-bench/peers/node-http-proxy.js PORT ORIGIN_URL\n');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 });
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true });
// http-proxy forwards the client's hop-by-hop `Connection` header: a client's `Connection: close`
// would close the pooled upstream connection under the agent (ECONNRESET -> 502 in new-conn).
// Drop it, as nginx's `proxy_set_header Connection ""` does; the agent then sends keep-alive.
proxy.on('proxyReq', (proxyReq) => proxyReq.removeHeader('connection'));
proxy.on('error', (err, req, res) => {
  try {
    if (res && typeof res.writeHead === 'function' && !res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway\n');
    } else res?.destroy?.();
  } catch {
    /* gone */
  }
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
