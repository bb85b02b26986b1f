// The floor under corelb's data plane: the least proxy that can be built from the same parts
// (a uWebSockets.js front, node:net keep-alive upstream sockets reading into one buffer through
// `onread`, the upstream head as one string with X-Forwarded-For, the answer in one cork), with
// nothing of corelb's own: no config, routing, balancing, metrics, deadlines, request ids or
// checks. It measures how close to nginx those parts can come, and so how much of corelb's gap
// is its own code (side-by-side.js --a floor --b corelb) and how much the parts' (--a nginx
// --b floor). Not a proxy: it expects tiny GETs answered by static-origin.js, each whole in one
// read, and sends on the status and body only.
//
//   node native-free-bench/floor.js ORIGIN_PORT PORT     (prints "ready" once listening)

import net from 'node:net';
import uWS from 'uWebSockets.js';

const originPort = Number(process.argv[2]);
const port = Number(process.argv[3]);
const READ = Buffer.allocUnsafeSlow(64 * 1024);
const idle = [];

class Upstream {
  constructor() {
    this.res = null;
    this.socket = net.connect({ host: '127.0.0.1', port: originPort, noDelay: true, onread: { buffer: READ, callback: (n) => this.onRead(n) } });
  }

  onRead(n) {
    const res = this.res;
    if (res === null) {
      this.socket.destroy(); // the client went away: the answer belongs to no one
      return true;
    }
    this.res = null;
    let end = 0;
    while (end + 3 < n && !(READ[end] === 13 && READ[end + 1] === 10 && READ[end + 2] === 13 && READ[end + 3] === 10)) end++;
    const status = new Uint8Array(READ.buffer, READ.byteOffset + 9, READ.indexOf(13) - 9);
    const body = new Uint8Array(READ.buffer, READ.byteOffset + end + 4, n - end - 4);
    res.cork(() => {
      res.writeStatus(status);
      res.end(body);
    });
    idle.push(this);
    return true;
  }
}

uWS.App()
  .any('/*', (res, req) => {
    const a = new Uint8Array(res.getRemoteAddress());
    const at = a.length === 4 ? 0 : 12;
    let head = req.getCaseSensitiveMethod() + ' ' + req.getUrl() + ' HTTP/1.1\r\n';
    req.forEach((name, value) => {
      head += name + ': ' + value + '\r\n';
    });
    head += 'x-forwarded-for: ' + a[at] + '.' + a[at + 1] + '.' + a[at + 2] + '.' + a[at + 3] + '\r\n\r\n';
    const up = idle.pop() ?? new Upstream();
    up.res = res;
    res.onAborted(() => {
      if (up.res === res) up.res = null;
    });
    up.socket.write(head);
  })
  .listen('127.0.0.1', port, (s) => {
    if (!s) {
      process.stderr.write(`floor: cannot listen on ${port}\n`);
      process.exit(1);
    }
    process.stdout.write('ready\n');
  });
