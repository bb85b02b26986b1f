// Owns the cache benchmark: corelb's shared response cache side by side with nginx's proxy_cache
// (cache directory on tmpfs, /dev/shm; the same TTL from the origin's Cache-Control), both one
// worker, under wrk (-t1 -c64, keep-alive) on cache hits of a 2-byte and a 64 KiB body:
// req/s and CPU µs per request of each proxy's process tree (/proc), rounds interleaved, the
// median printed. Then corelb's RSS growth after filling its cache with answers of mixed sizes
// (more than it holds, so it evicts), against cache.size + 10%.
//
//   node native-free-bench/cache.js [--seconds N] [--rounds N] [--size 64mb] [--skip-nginx]
//
// Needs `npm run build`, wrk and nginx (Debian's packages). Prints a Markdown table.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { eachFlag, findExecutable, fmt, freePort, probe, REPO_ROOT, sleep, spawnUntilListening, spawnUntilReady, stopChild, treeCpuMicros, treeRssBytes } from './lib.js';
import { nginxPreamble } from './static-origin.js';
import { findWrk, runWrk } from './wrk.js';

let seconds = 5;
let rounds = 3;
let sizeMb = 64;
let skipNginx = false;
eachFlag(process.argv.slice(2), (flag, value, positive) => {
  if (flag === '--seconds') seconds = positive();
  else if (flag === '--rounds') rounds = positive();
  else if (flag === '--size') sizeMb = Number.parseInt(value(), 10);
  else if (flag === '--skip-nginx') skipNginx = true;
  else throw new Error(`unknown flag ${flag}`);
});

const SMALL = Buffer.from('ok');
const LARGE = Buffer.alloc(64 * 1024, 120);

/** The origin: every answer fresh for an hour; /small 2 bytes, /large 64 KiB, /mixed/N N bytes. */
async function startCacheOrigin() {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').startsWith('/raw/') ? req.url.slice(4) : (req.url ?? '/');
    let body = SMALL;
    if (url === '/large') body = LARGE;
    else if (url.startsWith('/mixed/')) body = Buffer.alloc(Number.parseInt(url.slice(7), 10) || 1, 97);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'cache-control': 'max-age=3600' });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

async function startCorelb(origin, size) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-cache-'));
  const port = await freePort();
  const file = path.join(dir, 'corelb.yaml');
  writeFileSync(
    file,
    [
      `listen: { host: 127.0.0.1, port: ${port} }`,
      'workers: 1',
      'log: { level: info, access: false }',
      'forwarded_for: false',
      `cache: { size: ${size}mb, max_object: 1mb }`,
      'pools:',
      '  web:',
      '    cache: true',
      `    backends: [${origin.url}]`,
      '  raw:',
      `    backends: [${origin.url}]`,
      'routes:',
      '  - { path_prefix: /raw/, pool: raw }',
      '  - { path_prefix: /, pool: web }',
      '',
    ].join('\n'),
  );
  const { child } = await spawnUntilReady(process.execPath, [path.join(REPO_ROOT, 'dist', 'cli.js'), 'start', '--config', file], {
    isReady: (l) => l.includes('"msg":"ready"'),
    label: 'corelb',
  });
  child.stdout.resume();
  child.stderr.resume();
  return { label: 'corelb (workers: 1)', pid: child.pid, url: `http://127.0.0.1:${port}`, stop: async () => (await stopChild(child, 5000), rmSync(dir, { recursive: true, force: true })) };
}

async function startNginx(origin, size) {
  const bin = findExecutable('nginx');
  if (!bin) throw new Error('nginx not found');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-nginx-cache-'));
  const cacheDir = mkdtempSync(path.join('/dev/shm', 'corelb-bench-nginx-cache-'));
  const port = await freePort();
  const user = process.getuid?.() === 0 ? os.userInfo().username : null;
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    [
      ...nginxPreamble({ dir, user }),
      `    proxy_cache_path ${cacheDir} levels=1:2 keys_zone=bench:16m max_size=${size}m inactive=1h use_temp_path=off;`,
      `    upstream origin { server ${origin.url.slice(7)}; keepalive 64; }`,
      '    server {',
      `        listen 127.0.0.1:${port};`,
      '        location / {',
      '            proxy_pass http://origin;',
      '            proxy_http_version 1.1;',
      '            proxy_set_header Connection "";',
      '            proxy_cache bench;',
      '            proxy_cache_lock on;',
      '            add_header Cache-Status $upstream_cache_status;',
      '        }',
      '    }',
      '}',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  const { child } = await spawnUntilListening(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { url: url + '/small', cwd: dir, label: 'nginx' });
  return {
    label: 'nginx proxy_cache (1 worker, /dev/shm)',
    pid: child.pid,
    url,
    stop: async () => {
      await stopChild(child, 5000);
      rmSync(dir, { recursive: true, force: true });
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** The Cache-Status field of a GET (to check that the measured answers are hits). */
function cacheStatus(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.headers['cache-status'] ?? '')));
      })
      .on('error', reject);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(wrk, target, p) {
  const before = treeCpuMicros(target.pid);
  const { result } = await runWrk(wrk, { url: target.url + p, connections: 64, seconds });
  const cpu = treeCpuMicros(target.pid) - before;
  if (result.errors > 0 || result.non2xx > 0) throw new Error(`${target.label} ${p}: ${result.errors} errors, ${result.non2xx} non-2xx`);
  const n = result.requests.total;
  return { rps: n / result.duration, cpuUs: cpu / n };
}

/** Fill with answers of mixed sizes (1 KiB .. 256 KiB) adding up to `total` bytes; 16 at a time. */
async function fill(url, total, prefix = '') {
  const sizes = [1024, 3000, 9000, 30_000, 100_000, 262_144];
  let sent = 0;
  let k = 0;
  while (sent < total) {
    const batch = [];
    for (let i = 0; i < 16 && sent < total; i++, k++) {
      const n = sizes[k % sizes.length] + (k % 97);
      sent += n;
      batch.push(probe(`${url}${prefix}/mixed/${n}?k=${k}`));
    }
    await Promise.all(batch);
  }
  return k;
}

async function main() {
  const wrk = findWrk();
  if (!wrk) throw new Error('wrk not found');
  const origin = await startCacheOrigin();
  const targets = [await startCorelb(origin, sizeMb)];
  if (!skipNginx) targets.push(await startNginx(origin, sizeMb));
  const rows = new Map();
  try {
    for (const t of targets) {
      for (const p of ['/small', '/large']) {
        for (let i = 0; i < 3; i++) await probe(t.url + p);
        const st = await cacheStatus(t.url + p);
        if (st !== 'corelb; hit' && st !== 'HIT') throw new Error(`${t.label} ${p}: not a cache hit after warming up (Cache-Status: ${st})`);
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) {
        for (const p of ['/small', '/large']) {
          const m = await measure(wrk, t, p);
          const key = `${t.label}|${p}`;
          if (!rows.has(key)) rows.set(key, []);
          rows.get(key).push(m);
          process.stderr.write(`round ${r + 1} ${t.label} ${p}: ${fmt(m.rps, 0)} req/s, ${fmt(m.cpuUs, 1)} µs CPU/request\n`);
        }
      }
    }
  } finally {
    for (const t of targets) await t.stop();
  }
  console.log(`\nCache hits, wrk -t1 -c64 keep-alive, ${seconds} s x ${rounds} rounds (median), load average before: ${os.loadavg()[0].toFixed(2)}, ${os.cpus().length} CPUs\n`);
  console.log('| proxy | body | req/s | CPU µs / request |');
  console.log('| --- | --- | --- | --- |');
  for (const [key, ms] of rows) {
    const [label, p] = key.split('|');
    console.log(`| ${label} | ${p === '/small' ? '2 B' : '64 KiB'} | ${fmt(median(ms.map((m) => m.rps)), 0)} | ${fmt(median(ms.map((m) => m.cpuUs)), 1)} |`);
  }

  // RSS: fill twice the cache with mixed sizes, compare the growth with size + 10%. The same
  // traffic through a pool without cache first, so that what grows after is the cache's.
  const corelb = await startCorelb(origin, sizeMb);
  try {
    await fill(corelb.url, 2 * sizeMb * 1024 * 1024, '/raw');
    await sleep(500);
    const before = treeRssBytes(corelb.pid);
    const answers = await fill(corelb.url, 2 * sizeMb * 1024 * 1024);
    await sleep(1000);
    const after = treeRssBytes(corelb.pid);
    const growth = after - before;
    const bound = sizeMb * 1024 * 1024 * 1.1;
    console.log(`\nRSS (after the same answers through a pool without cache) before and after filling cache.size ${sizeMb}mb with ${answers} answers of 1 KiB to 256 KiB (${2 * sizeMb} MiB in all): ${fmt(before / 1048576, 1)} MiB -> ${fmt(after / 1048576, 1)} MiB, growth ${fmt(growth / 1048576, 1)} MiB (bound: size + 10% = ${fmt(bound / 1048576, 1)} MiB): ${growth <= bound ? 'within' : 'OVER'}`);
  } finally {
    await corelb.stop();
    await origin.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
