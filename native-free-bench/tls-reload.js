// Measures the two ways to give a TLS listener new certificates in uWebSockets.js while clients
// open a new TLS connection per request (16 at a time) and one keep-alive connection sends a
// request every 20 ms: (swap-app) a new SSLApp listening on the same port (SO_REUSEPORT), then the
// old listen socket closed, as corelb's reload does; (swap-names) removeServerName +
// addServerName on one app. Prints the requests answered, the connections reset and the
// keep-alive answers for each, and the kernel's net.ipv4.tcp_migrate_req (with 1, closing a
// listen socket hands its queued connections to the other one). Each mode runs in a child
// process of its own, so that one that crashes (swap-names frees the router that open connections
// of the name still use) is a row too. Certificates come from openssl.
//   node native-free-bench/tls-reload.js [--duration 3] [--every 50]
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import uWS from 'uWebSockets.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};
const durationMs = arg('duration', 3) * 1000;
const everyMs = arg('every', 50);
const dir = mkdtempSync(join(tmpdir(), 'corelb-tls-reload-'));
const openssl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'ignore'] });
function leaf(name) {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`);
  return { key_file_name: key, cert_file_name: cert };
}
const base = leaf('default.test');
const named = leaf('b.test');
const answer = (res) => res.end('ok');

function build() {
  const app = uWS.SSLApp(base);
  app.any('/*', answer);
  app.addServerName('b.test', named);
  app.domain('b.test').any('/*', answer);
  return app;
}

async function measure(mode) {
  let app = build();
  // a port below the kernel's ephemeral range (32768 up, where an earlier run's clients leave
  // their ports in TIME_WAIT), tried until one is free: a failed listen gives `false`, which
  // us_listen_socket_close takes for a socket (a crash). Not port 0: a port the kernel picked
  // takes no second listen socket (the swap's)
  let listen = false;
  let port = 0;
  for (let tries = 0; listen === false && tries < 50; tries++) {
    port = 20000 + Math.floor(Math.random() * 12000);
    listen = await new Promise((r) => app.listen('127.0.0.1', port, r));
  }
  if (listen === false) throw new Error('cannot listen on 127.0.0.1');
  const apps = [app];
  let swaps = 0;
  let failedSwaps = 0;
  const timer = setInterval(() => {
    if (mode === 'swap-app') {
      const next = build();
      apps.push(next);
      next.listen('127.0.0.1', port, (s) => {
        if (s === false) {
          failedSwaps++;
          return;
        }
        uWS.us_listen_socket_close(listen);
        listen = s;
        swaps++;
      });
    } else {
      swaps++;
      app.removeServerName('b.test');
      app.addServerName('b.test', named);
      app.domain('b.test').any('/*', answer);
    }
  }, everyMs);
  let ok = 0;
  const errors = {};
  const once = () =>
    new Promise((resolve) => {
      const c = tls.connect({ port, host: '127.0.0.1', servername: 'b.test', rejectUnauthorized: false }, () => c.write('GET / HTTP/1.1\r\nHost: b.test\r\n\r\n'));
      c.on('data', () => {
        ok++;
        c.destroy();
        resolve();
      });
      c.on('error', (e) => {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
        resolve();
      });
    });
  const kept = tls.connect({ port, host: '127.0.0.1', servername: 'b.test', rejectUnauthorized: false });
  let keptAnswers = 0;
  let keptError = null;
  kept.on('data', (d) => (keptAnswers += d.toString().split('\r\n\r\nok').length - 1));
  kept.on('error', (e) => (keptError = e.code));
  const keptTimer = setInterval(() => kept.write('GET / HTTP/1.1\r\nHost: b.test\r\n\r\n'), 20);
  const until = Date.now() + durationMs;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (Date.now() < until) await once();
  }));
  clearInterval(timer);
  clearInterval(keptTimer);
  kept.destroy();
  uWS.us_listen_socket_close(listen);
  for (const a of apps) a.close();
  return { mode, swaps, failedSwaps, answered: ok, reset: Object.values(errors).reduce((a, b) => a + b, 0), errors, keptAnswers, keptError };
}

const child = process.argv.indexOf('--mode');
if (child >= 0) {
  const r = await measure(process.argv[child + 1]);
  // uWS prints its own lines on stdout: the result is the line that starts with RESULT
  console.log('RESULT ' + JSON.stringify(r));
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
rmSync(dir, { recursive: true, force: true });
let migrate = 'unknown';
try {
  migrate = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
} catch {}
console.log(`net.ipv4.tcp_migrate_req = ${migrate}; ${durationMs} ms per mode, a swap every ${everyMs} ms`);
console.log('| mode | swaps | new connections answered | reset | keep-alive answers | process |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const mode of ['swap-app', 'swap-names']) {
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--mode', mode, '--duration', String(durationMs / 1000), '--every', String(everyMs)], { encoding: 'utf8', timeout: durationMs + 30_000 });
  const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (line === undefined) {
    console.log(`| ${mode} | | | | | died: ${run.signal ?? `exit ${run.status}`} |`);
    continue;
  }
  const r = JSON.parse(line.slice(7));
  console.log(`| ${mode} | ${r.swaps} | ${r.answered} | ${r.reset} | ${r.keptAnswers}${r.keptError ? ` (${r.keptError})` : ''} | ${r.failedSwaps ? `ok; ${r.failedSwaps} listens on the port failed` : 'ok'} |`);
}
