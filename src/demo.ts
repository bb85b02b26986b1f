// Owns `corelb demo`: three small demo backends on loopback and corelb in front of them, with
// config/demo.yaml, so a newcomer sees balancing work in one command.

import http from 'node:http';
import type { Config } from './config/types.js';

/** Start one demo backend per backend of the config's pools; resolves with a close function. */
export async function startDemoBackends(config: Config): Promise<() => Promise<void>> {
  const servers: http.Server[] = [];
  const seen = new Set<string>();
  for (const pool of config.pools) {
    for (const b of pool.backends) {
      if (seen.has(b.url)) continue;
      seen.add(b.url);
      const name = `backend ${b.port}`;
      const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          const body = JSON.stringify({ backend: name, method: req.method, url: req.url, requestId: req.headers['x-request-id'] }) + '\n';
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
      });
      server.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(b.port, b.host, () => resolve());
      });
      servers.push(server);
    }
  }
  return async () => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  };
}
