// WebSocket proxying, corelb (workers: 1) side by side with nginx (one worker, proxy_pass with the
// Upgrade headers) in front of the same uWebSockets.js echo origin, rounds alternating: echo
// messages per second and the proxy's CPU per message for small (32 B) and 64 KiB messages, then
// the proxy's memory (RSS) with N idle WebSockets open through it. The load is a Node process of
// its own (websocket-load.js) speaking corelb's framing (dist/upstream/websocket-frames.js):
// C connections, each keeping W messages in flight. Run after `npm run build`.
//   node native-free-bench/websocket.js [--duration 5] [--rounds 3] [--warmup 1] [--idle 9000] [--compare DIR]
// --warmup S: each target carries S seconds of the scenario's load, unmeasured, before its rounds
// (run.js's warm-up: a JIT-compiled corelb, as in service, not one compiling its relay in round 1).
// --compare DIR: a second corelb build (e.g. a copy of dist/ made before a change) measured in the
// same rounds, with its ratio to this checkout's.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, REPO_ROOT, corelbYaml, eachFlag, findExecutable, freePort, sleep, spawnUntilReady, stopChild, treeCpuMicros, treeRssBytes } from './lib.js';

// 9,000 idle: each proxy holds two descriptors per WebSocket, and this machine's limit is 20,000
const opts = { duration: 5, rounds: 3, warmup: 1, idle: 9000, compare: null };
eachFlag(process.argv.slice(2), (flag, value) => {
  if (flag === '--duration') opts.duration = Number(value());
  else if (flag === '--rounds') opts.rounds = Number(value());
  else if (flag === '--idle') opts.idle = Number(value());
  else if (flag === '--warmup') opts.warmup = Number(value());
  else if (flag === '--compare') opts.compare = path.resolve(value());
  else throw new Error('unknown flag ' + flag);
});

const ORIGIN = `
import uWS from 'uWebSockets.js';
const app = uWS.App().ws('/*', { maxPayloadLength: 16 * 1024 * 1024, maxBackpressure: 64 * 1024 * 1024, idleTimeout: 0, message: (ws, m, b) => { ws.send(m, b); } });
app.listen('127.0.0.1', Number(process.argv[1]), (s) => { console.log(s ? 'ready' : 'failed'); });
`;

function nginxConf(dir, port, origin) {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/pt; fastcgi_temp_path ${dir}/ft; uwsgi_temp_path ${dir}/ut; scgi_temp_path ${dir}/st;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${origin};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 600s;
    }
  }
}
`;
}

async function startOrigin() {
  const port = await freePort();
  const { child } = await spawnUntilReady(process.execPath, ['--input-type=module', '-e', ORIGIN, String(port)], { isReady: (l) => l.trim() === 'ready', label: 'ws origin' });
  return { child, addr: `127.0.0.1:${port}` };
}

async function startCorelb(origin, dist = path.join(REPO_ROOT, 'dist'), name = 'corelb') {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-ws-'));
  const file = path.join(dir, 'corelb.yaml');
  writeFileSync(file, corelbYaml({ port, workers: 1, backends: [`http://${origin.addr}`] }));
  const { child } = await spawnUntilReady(process.execPath, [path.join(dist, 'cli.js'), 'start', '--config', file], { isReady: (l) => l.includes('"ready"') || l.includes('ready'), label: name });
  await sleep(500);
  return { name, child, port };
}

async function startNginx(origin) {
  const bin = findExecutable('nginx');
  if (!bin) return null;
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-wsnginx-'));
  writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, origin.addr));
  const child = spawn(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  await sleep(800);
  return { name: 'nginx', child, port };
}

/** One load run: resolves the load's JSON line; `onOpen` runs when it prints "open". */
function load(port, args, onOpen = () => {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(BENCH_DIR, 'websocket-load.js'), String(port), ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('open\n') && onOpen !== null) {
        onOpen();
        onOpen = null;
      }
    });
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error('load failed: ' + out))));
  });
}

const origin = await startOrigin();
const targets = [await startCorelb(origin)];
const compareName = opts.compare === null ? null : `corelb (${path.relative(REPO_ROOT, opts.compare) || opts.compare})`;
if (opts.compare !== null) targets.push(await startCorelb(origin, opts.compare, compareName));
const ng = await startNginx(origin);
if (ng) targets.push(ng);
const scenarios = [
  { name: 'echo 32 B', size: 32, conns: 16, window: 64 },
  { name: 'echo 64 KiB', size: 65536, conns: 16, window: 4 },
];
const rows = [];
// memory first, while both proxies are fresh (--idle 0: none)
for (const t of opts.idle > 0 ? targets : []) {
  const before = treeRssBytes(t.child.pid);
  let withThem = 0;
  await load(t.port, ['idle', opts.idle], () => (withThem = treeRssBytes(t.child.pid)));
  rows.push({ scenario: `${opts.idle} idle WebSockets`, target: t.name, 'RSS before MiB': (before / 2 ** 20).toFixed(1), 'RSS with them MiB': (withThem / 2 ** 20).toFixed(1), 'KiB per WebSocket': ((withThem - before) / 1024 / opts.idle).toFixed(1) });
}
for (const s of scenarios) {
  const per = new Map(targets.map((t) => [t.name, []]));
  if (opts.warmup > 0) for (const t of targets) await load(t.port, ['echo', s.conns, s.window, s.size, opts.warmup]);
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of r % 2 ? [...targets].reverse() : targets) {
      const c0 = treeCpuMicros(t.child.pid);
      const res = await load(t.port, ['echo', s.conns, s.window, s.size, opts.duration]);
      const cpu = treeCpuMicros(t.child.pid) - c0;
      per.get(t.name).push({ mps: res.messages / res.seconds, cpuUsPerMsg: cpu / res.messages });
    }
  }
  for (const [name, runs] of per) {
    const mps = runs.reduce((a, x) => a + x.mps, 0) / runs.length;
    const cpu = runs.reduce((a, x) => a + x.cpuUsPerMsg, 0) / runs.length;
    rows.push({ scenario: s.name, target: name, 'messages/s': Math.round(mps), 'CPU µs/message': cpu.toFixed(2) });
  }
}
// a Markdown table, then corelb / nginx for each scenario
process.stdout.write('| scenario | target | messages/s | CPU µs/message | RSS before MiB | RSS with them MiB | KiB per WebSocket |\n|---|---|---|---|---|---|---|\n');
const cell = (v) => (v === undefined ? '' : String(v));
for (const r of rows) process.stdout.write(`| ${r.scenario} | ${r.target} | ${cell(r['messages/s'])} | ${cell(r['CPU µs/message'])} | ${cell(r['RSS before MiB'])} | ${cell(r['RSS with them MiB'])} | ${cell(r['KiB per WebSocket'])} |\n`);
for (const s of scenarios) {
  const c = rows.find((r) => r.scenario === s.name && r.target === 'corelb');
  const n = rows.find((r) => r.scenario === s.name && r.target === 'nginx');
  if (c && n) process.stdout.write(`| ${s.name} | corelb / nginx | ${(c['messages/s'] / n['messages/s']).toFixed(2)}x | ${(Number(c['CPU µs/message']) / Number(n['CPU µs/message'])).toFixed(2)}x | | | |\n`);
  const o = rows.find((r) => r.scenario === s.name && r.target === compareName);
  if (c && o) process.stdout.write(`| ${s.name} | corelb / ${compareName} | ${(c['messages/s'] / o['messages/s']).toFixed(2)}x | ${(Number(c['CPU µs/message']) / Number(o['CPU µs/message'])).toFixed(2)}x | | | |\n`);
}
for (const t of targets) await stopChild(t.child);
await stopChild(origin.child);
process.exit(0);
