// Peer for the benchmark: @fastify/http-proxy on fastify 5, one process.
//
//   node native-free-bench/peers/fastify-proxy.js PORT ORIGIN_URL
//
// Upstream through @fastify/reply-from's default client, an undici Pool (keep-alive); the
// plugin passes request bodies through as streams (no body limit applies). Client keep-alive
// idle timeout 60 s (corelb's timeouts.idle default), logger off, X-Forwarded-* added.
// Prints `ready` once listening. SIGTERM/SIGINT -> exit 0.
//
// fastify and @fastify/http-proxy are dev dependencies, loaded with bare specifiers through
// createRequire (both ship CommonJS), so NODE_PATH can point at another install too.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Fastify = require('fastify');
const proxy = require('@fastify/http-proxy');

const port = Number(process.argv[2]);
const upstream = process.argv[3];
if (!Number.isInteger(port) || !upstream) {
  process.stderr.write('usage: node native-free-bench/peers/fastify-proxy.js PORT ORIGIN_URL\n');
  process.exit(2);
}

const app = Fastify({ logger: false, keepAliveTimeout: 60_000, requestTimeout: 0 });
app.register(proxy, {
  upstream,
  http2: false,
  // X-Forwarded-*, as corelb (and the nginx / HAProxy configs) add them; the plugin adds none
  replyOptions: {
    rewriteRequestHeaders: (req, headers) => ({
      ...headers,
      'x-forwarded-for': headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${req.ip}` : req.ip,
      'x-forwarded-proto': 'http',
      'x-forwarded-host': headers.host,
    }),
  },
});
app.listen({ port, host: '127.0.0.1' }).then(
  () => process.stdout.write('ready\n'),
  (err) => {
    process.stderr.write(`fastify-proxy: ${err && err.stack}\n`);
    process.exit(1);
  },
);

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
