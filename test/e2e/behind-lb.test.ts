// corelb behind real nginx and HAProxy (Debian packages), configured with exactly the recipes in
// config/behind/ that the README shows (only the addresses filled in): requests pass through with
// keep-alive and X-Forwarded-For carries the client, then the proxy; HAProxy's HTTP/1.1 check on
// the admin /readyz reports corelb UP, DOWN while its only backend is drained, and UP again. Next
// to them, each tool's default (nginx's HTTP/1.0 proxying, HAProxy's HTTP/1.0 OPTIONS check on the
// front port) gets the front server's 505, which is why the recipes set what they set.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin.js';
import { killAll } from '../helpers/children.js';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, REPO_ROOT, startCorelb } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';
import { eventually, startOrigin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';
import { requireTool } from '../helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'corelb-behind-'));
// nginx's workers run as nobody when the test runs as root: they must reach their temp paths
chmodSync(dir, 0o755);
const tools = new Set<ChildProcess>();
afterAll(async () => {
  await stopTools();
  await stopEverything();
  rmSync(dir, { recursive: true, force: true });
});

const recipe = (name: string): string => readFileSync(join(REPO_ROOT, 'config/behind', name), 'utf8');

/** Replaces `from` (which must occur) with `to` everywhere. */
function fill(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the recipe no longer has ${from}`);
  return text.replaceAll(from, to);
}

/**
 * SIGTERM first: nginx's master stops its workers then (SIGKILLed, it would leave them running);
 * SIGKILL for whatever is still there after 5 s.
 */
async function stopTools(): Promise<void> {
  const exits = [...tools].map(
    (p) =>
      new Promise<void>((resolve) => {
        if (p.exitCode !== null || p.signalCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      }),
  );
  const timer = setTimeout(() => killAll(tools), 5000);
  await Promise.all(exits);
  clearTimeout(timer);
  tools.clear();
}

function startTool(cmd: string, args: string[]): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  p.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  p.on('exit', (code) => {
    if (tools.has(p)) output += `\n(exited ${code})`;
  });
  Object.defineProperty(p, 'output', { get: () => output });
  tools.add(p);
  return p;
}

/** HAProxy's `show stat` over its stats socket: status by "backend/server". */
function haproxyStatus(socket: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let text = '';
    c.on('data', (d) => (text += d.toString()));
    c.on('error', reject);
    c.on('end', () => {
      const lines = text.split('\n').filter((l) => l !== '');
      const header = lines[0]!.replace(/^# /, '').split(',');
      const col = (name: string) => header.indexOf(name);
      const out = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const f = l.split(',');
        out.set(`${f[col('pxname')]}/${f[col('svname')]}`, f[col('status')]!);
      }
      resolve(out);
    });
    c.write('show stat\n');
  });
}

/** The README shows each recipe as it is in config/behind/ (comments and all). */
function expectInReadme(name: string): void {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  expect(readme.includes(recipe(name)), `README.md shows config/behind/${name} verbatim`).toBe(true);
}

describe('behind another load balancer', () => {
  it('nginx and HAProxy with the README recipes: requests pass, X-Forwarded-For chains, HAProxy sees corelb UP', async () => {
    const nginx = requireTool('nginx', 'nginx');
    const haproxy = requireTool('haproxy', 'haproxy');
    expectInReadme('nginx.conf');
    expectInReadme('haproxy.cfg');

    const origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ xff: req.headers['x-forwarded-for'], host: req.headers.host, proto: req.headers['x-forwarded-proto'] }));
    });
    const adminPort = await freePort();
    const lb = await startCorelb(corelbConfig({ workers: 1, pools: { web: [origin.url] }, admin: { port: adminPort } }));
    const admin = adminClient(`http://127.0.0.1:${adminPort}`);

    // nginx: the recipe, and next to it a server with nginx's default proxying (HTTP/1.0)
    const [nginxPort, nginxDefaultPort] = [await freePort(), await freePort()];
    let site = fill(recipe('nginx.conf'), '127.0.0.1:8080', `127.0.0.1:${lb.port}`);
    site = fill(site, 'listen 80;', `listen 127.0.0.1:${nginxPort};`);
    writeFileSync(join(dir, 'corelb.conf'), site);
    writeFileSync(
      join(dir, 'nginx.conf'),
      [
        'worker_processes 1;',
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/nginx-error.log warn;`,
        'events { worker_connections 1024; }',
        'http {',
        '    access_log off;',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${dir}/${t}_temp;`),
        `    include ${dir}/corelb.conf;`,
        `    server { listen 127.0.0.1:${nginxDefaultPort}; location / { proxy_pass http://127.0.0.1:${lb.port}; } }`,
        '}',
        '',
      ].join('\n'),
    );
    startTool(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'nginx-error.log'), '-g', 'daemon off;']);

    // HAProxy: the recipe, a stats socket, and a backend with HAProxy's default check
    const [haproxyPort, unusedPort] = [await freePort(), await freePort()];
    const socket = join(dir, 'haproxy.sock');
    let cfg = fill(recipe('haproxy.cfg'), 'bind :80', `bind 127.0.0.1:${haproxyPort}`);
    cfg = fill(cfg, '127.0.0.1:8080', `127.0.0.1:${lb.port}`);
    cfg = fill(cfg, 'port 9090', `port ${adminPort}`);
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      [
        'global',
        `    stats socket ${socket} mode 600 level admin`,
        'defaults',
        '    timeout connect 2s',
        '    timeout client 30s',
        '    timeout server 30s',
        cfg,
        'backend default_check',
        '    mode http',
        '    option httpchk',
        `    server corelb-default 127.0.0.1:${lb.port} check inter 500ms fall 1 rise 1`,
        'frontend unused',
        '    mode http',
        `    bind 127.0.0.1:${unusedPort}`,
        '    default_backend default_check',
        '',
      ].join('\n'),
    );
    const hap = startTool(haproxy, ['-f', join(dir, 'haproxy.cfg'), '-db']);
    const output = (p: ChildProcess) => (p as ChildProcess & { output: string }).output;

    const answers = (url: string) => request(url, { timeoutMs: 2000 }).then((r) => r.status === 200, () => false);
    await eventually(() => answers(`http://127.0.0.1:${nginxPort}/`), 15_000, 'nginx answering through corelb');
    await eventually(async () => (await haproxyStatus(socket).catch(() => new Map<string, string>())).get('corelb/corelb1') === 'UP', 15_000, `HAProxy reporting corelb1 UP\n${output(hap)}`);

    // requests through each, on the same client connection where the client keeps one
    for (const [name, port] of [
      ['nginx', nginxPort],
      ['haproxy', haproxyPort],
    ] as const) {
      for (let k = 0; k < 10; k++) {
        const r = await request(`http://127.0.0.1:${port}/hello`, { headers: { 'x-forwarded-for': '203.0.113.7', host: 'www.example.com' } });
        expect(r.status, `${name}: ${r.text}`).toBe(200);
        // the client's own value, then nginx/HAProxy's view of the client, then corelb's of the proxy
        expect(JSON.parse(r.text), name).toEqual({ xff: '203.0.113.7, 127.0.0.1, 127.0.0.1', host: 'www.example.com', proto: 'http' });
      }
    }

    // the defaults: nginx's HTTP/1.0 gets the front server's 505; HAProxy's default check fails
    expect((await request(`http://127.0.0.1:${nginxDefaultPort}/hello`)).status).toBe(505);
    await eventually(async () => (await haproxyStatus(socket)).get('default_check/corelb-default') === 'DOWN', 10_000, 'the default check DOWN');

    // the check follows /readyz: DOWN while the pool's only backend is drained, UP once enabled
    expect((await admin.post('/backends/drain', { backend: origin.url })).status).toBe(200);
    await eventually(async () => (await haproxyStatus(socket)).get('corelb/corelb1') === 'DOWN', 15_000, 'corelb1 DOWN after the drain');
    expect((await admin.post('/backends/enable', { backend: origin.url })).status).toBe(200);
    await eventually(async () => (await haproxyStatus(socket)).get('corelb/corelb1') === 'UP', 15_000, 'corelb1 UP again');
    expect((await request(`http://127.0.0.1:${haproxyPort}/again`)).status).toBe(200);
  });
});
