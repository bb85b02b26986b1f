// Owns the C origin of the wrk scenarios (run.js, scaling.js): nginx serving a fixed 2-byte body ("ok") from a config generated in a temp dir, in its own process.
//
// One worker by default, access log off, keep-alive without a request cap, every temp path inside the temp
// dir (Debian's nginx would otherwise reach for /var/lib/nginx). Any path answers 200 "ok",
// text/plain: what origin.js answers on `/`, so the same probe checks both origins.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findExecutable, freePort, spawnUntilListening, stopChild } from './lib.js';

export const findNginx = () => findExecutable('nginx');

/**
 * The lines every bench nginx.conf starts with, up to inside `http {`: `workers` processes, pid,
 * logs and temp paths in `dir`, access log off, keep-alive without a request cap. `user` is set
 * when running as root (nginx would switch to nobody).
 */
export function nginxPreamble({ dir, user = null, workers = 1 }) {
  return [
    ...(user ? [`user ${user};`] : []),
    `worker_processes ${workers};`,
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 30000; }',
    'http {',
    '    access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${dir}/${t}_temp;`),
    '    keepalive_timeout 60s;',
    '    keepalive_requests 100000000;',
  ];
}

/** The origin's nginx.conf. `user` is set when running as root (nginx would switch to nobody). */
export function staticOriginConf({ dir, port, user = null, workers = 1 }) {
  return [
    ...nginxPreamble({ dir, user, workers }),
    '    server {',
    `        listen 127.0.0.1:${port};`,
    '        location / { default_type text/plain; return 200 "ok"; }',
    '    }',
    '}',
    '',
  ].join('\n');
}

/**
 * Start the static nginx origin (`workers` nginx worker processes; 1 unless a many-core run asks). Returns the shape of lib.js's startOrigin (one port):
 * { child, pid (the master: its worker is a descendant), port, url, ports, urls, label, stop }.
 */
export async function startStaticOrigin(bin = findNginx(), workers = 1) {
  if (!bin) throw new Error('nginx not found on PATH or in /usr/sbin (apt-get install nginx)');
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-origin-'));
  const file = path.join(dir, 'nginx.conf');
  writeFileSync(file, staticOriginConf({ dir, port, workers, user: process.getuid?.() === 0 ? os.userInfo().username : null }));
  const url = `http://127.0.0.1:${port}`;
  let child;
  try {
    ({ child } = await spawnUntilListening(bin, ['-p', dir, '-c', file, '-g', 'daemon off;'], { url: url + '/', cwd: dir, label: 'nginx origin' }));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    child,
    pid: child.pid,
    port,
    url,
    ports: [port],
    urls: [url],
    label: 'nginx static',
    stop: async () => {
      const r = await stopChild(child, 3000);
      rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}
