// Free loopback TCP port: bind 127.0.0.1:0, read the port, close. corelb's workers all listen on
// one port with SO_REUSEPORT, so port 0 cannot be handed to it; tests pick a port first.
import net from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: no address'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** A port on which nothing listens (for "connection refused" backends). */
export const closedPort = freePort;
