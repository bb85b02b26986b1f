// Owns the HTTPS benchmark: corelb and nginx terminating TLS 1.3 with the same certificate (an EC
// P-256 leaf made by openssl), one worker each, in front of the same C origin (nginx serving 2
// bytes, static-origin.js), loaded by wrk in rounds that alternate the targets. Two scenarios:
// keep-alive HTTPS GETs over 64 connections (req/s, CPU per request), and a new TLS connection
// per request over 16 connections (`Connection: close`: handshakes per second, CPU per
// handshake). CPU is the target's process tree (/proc), wrk's own not counted; medians of the
// rounds, and corelb / nginx for each figure. wrk makes a full handshake on every new connection
// (it does not resume sessions), for both targets.
//   node native-free-bench/tls.js [--rounds 3] [--duration 5] [--quick]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eachFlag, findExecutable, fmt, freePort, REPO_ROOT, spawnUntilListening, stopChild, treeCpuMicros } from './lib.js';
import { startStaticOrigin } from './static-origin.js';
import { findWrk, runWrk } from './wrk.js';

const opts = { rounds: 3, duration: 5 };
eachFlag(process.argv.slice(2), (flag, value, positive) => {
  if (flag === '--rounds') opts.rounds = Math.floor(positive());
  else if (flag === '--duration') opts.duration = positive();
  else if (flag === '--quick') Object.assign(opts, { rounds: 1, duration: 2 });
  else throw new Error(`unknown argument ${flag}: --rounds N, --duration S, --quick`);
});

const SCENARIOS = [
  { name: 'https-keepalive', connections: 64, close: false, per: 'request' },
  { name: 'https-new-conn', connections: 16, close: true, per: 'handshake' },
];

const wrk = findWrk();
const nginxBin = findExecutable('nginx');
if (!wrk || !nginxBin) throw new Error('wrk and nginx are needed (apt-get install wrk nginx)');
const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-bench-tls-'));
const cert = path.join(dir, 'bench.crt');
const key = path.join(dir, 'bench.key');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=bench.test', '-addext', 'subjectAltName=DNS:bench.test,IP:127.0.0.1'], { stdio: 'ignore' });

const origin = await startStaticOrigin(nginxBin);
const targets = [];

async function startCorelb() {
  const port = await freePort();
  const file = path.join(dir, 'corelb.yaml');
  writeFileSync(
    file,
    [
      'listen:',
      `  - host: 127.0.0.1`,
      `    port: ${port}`,
      `    tls: { certificates: [{ cert: ${cert}, key: ${key} }], min_version: "1.3" }`,
      'workers: 1',
      'log: { level: warn, access: false }',
      'timeouts: { connect: 2s, response: 30s, idle: 60s }',
      'pools:',
      '  web:',
      `    backends: [${origin.url}]`,
      '',
    ].join('\n'),
  );
  const { child } = await spawnUntilListening(process.execPath, [path.join(REPO_ROOT, 'dist', 'cli.js'), 'start', '--config', file], { url: `https://127.0.0.1:${port}/`, label: 'corelb' });
  return { label: 'corelb workers=1', pid: child.pid, url: `https://127.0.0.1:${port}/`, stop: () => stopChild(child, 5000) };
}

async function startNginx() {
  const port = await freePort();
  let conf = readFileSync(path.join(REPO_ROOT, 'native-free-bench', 'peers', 'nginx.conf.template'), 'utf8');
  for (const [k, v] of Object.entries({ DIR: dir, PORT: String(port), ORIGIN: `127.0.0.1:${origin.port}` })) conf = conf.split(`{{${k}}}`).join(v);
  // the same peer as run.js's, terminating TLS 1.3 with the same certificate (nginx's defaults
  // otherwise: session tickets on, no shared session cache)
  conf = conf.replace(`listen 127.0.0.1:${port};`, `listen 127.0.0.1:${port} ssl;\n        ssl_certificate ${cert};\n        ssl_certificate_key ${key};\n        ssl_protocols TLSv1.3;`);
  if (process.getuid?.() === 0) conf = `user ${os.userInfo().username};\n` + conf;
  const file = path.join(dir, 'nginx-tls.conf');
  writeFileSync(file, conf);
  // nginx -v writes "nginx version: nginx/1.22.1" to stderr
  const version = /nginx\/([\d.]+)/.exec(spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr ?? '')?.[1] ?? '';
  const { child } = await spawnUntilListening(nginxBin, ['-p', dir, '-c', file, '-g', 'daemon off;'], { url: `https://127.0.0.1:${port}/`, cwd: dir, label: 'nginx' });
  return { label: `nginx${version ? ' ' + version.trim() : ''}`, pid: child.pid, url: `https://127.0.0.1:${port}/`, stop: () => stopChild(child, 5000) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = new Map(); // `${scenario}|${target}` -> [{ rps, cpuUs, p99, errors }]
try {
  targets.push(await startCorelb(), await startNginx());
  process.stdout.write(`HTTPS (TLS 1.3, EC P-256) through corelb and nginx, one worker each, origin nginx static; wrk -t1, ${opts.rounds} round(s) of ${opts.duration} s\n`);
  for (let round = 1; round <= opts.rounds; round++) {
    for (const s of SCENARIOS) {
      const order = round % 2 ? targets : [...targets].reverse();
      for (const t of order) {
        const before = treeCpuMicros(t.pid);
        const { result } = await runWrk(wrk, { url: t.url, connections: s.connections, seconds: opts.duration, close: s.close });
        const cpu = treeCpuMicros(t.pid) - before;
        const n = result.requests.total;
        const row = { rps: n / result.duration, cpuUs: n > 0 ? cpu / n : NaN, p99: result.latency.p99, errors: result.errors + result.timeouts + result.non2xx };
        const k = `${s.name}|${t.label}`;
        results.set(k, [...(results.get(k) ?? []), row]);
        process.stdout.write(`[${round}/${opts.rounds}] ${s.name} ${t.label}: ${fmt(row.rps, 0)} req/s, ${fmt(row.cpuUs)} µs CPU per ${s.per}, ${row.errors} errors\n`);
      }
    }
  }
  process.stdout.write(`\n| scenario | target | req/s | CPU µs / request | p99 ms | errors |\n| --- | --- | --- | --- | --- | --- |\n`);
  for (const s of SCENARIOS) {
    const med = {};
    for (const t of targets) {
      const rows = results.get(`${s.name}|${t.label}`);
      med[t.label] = { rps: median(rows.map((r) => r.rps)), cpuUs: median(rows.map((r) => r.cpuUs)), p99: median(rows.map((r) => r.p99)), errors: rows.reduce((a, r) => a + r.errors, 0) };
      process.stdout.write(`| ${s.name} | ${t.label} | ${fmt(med[t.label].rps, 0)} | ${fmt(med[t.label].cpuUs)} | ${fmt(med[t.label].p99, 2)} | ${med[t.label].errors} |\n`);
    }
    const [c, n] = targets.map((t) => med[t.label]);
    process.stdout.write(`| ${s.name} | corelb / nginx | ${fmt(c.rps / n.rps, 2)}x | ${fmt(c.cpuUs / n.cpuUs, 2)}x | | |\n`);
  }
} finally {
  for (const t of targets) await t.stop();
  await origin.stop();
  rmSync(dir, { recursive: true, force: true });
}
