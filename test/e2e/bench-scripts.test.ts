// The bench scripts drive corelb's own modules and CLI: a smoke run of each with tiny, bounded
// loads, so that a change to those interfaces cannot leave `npm run bench` measuring errors
// (the upstream-client run once counted every request as an error after a parser change).
// Speed is not asserted here; only that every request succeeded. Needs `npm run build` first.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function bench(script: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'native-free-bench', script), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A temp dir for a script's results (never native-free-bench/results), removed after `fn`. */
async function withOut<T>(fn: (out: string) => T | Promise<T>): Promise<T> {
  const out = mkdtempSync(join(tmpdir(), 'corelb-bench-test-'));
  try {
    return await fn(out);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

describe('bench scripts', () => {
  it('upstream-client.js: every client completes its requests without errors', () => {
    const r = bench('upstream-client.js', ['--requests', '2000', '--warmup-requests', '200', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { clients: { client: string; requests: number; errors: number }[] };
    expect(result.clients.map((c) => c.client)).toEqual(['undici', 'corelb', 'raw-floor']);
    for (const c of result.clients) expect(c, c.client).toMatchObject({ requests: 2000, errors: 0 });
  }, 70_000);

  it('cache.js: corelb and nginx answering cache hits, one round, and the RSS after a fill', () => {
    // the script throws (exit 1) on any error or non-2xx answer, and when a warmed-up answer is not a hit
    const r = bench('cache.js', ['--seconds', '1', '--rounds', '1', '--size', '2']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| corelb \(workers: 1\) \| 2 B \| [\d,]+ \| [\d.]+ \|$/m);
    expect(r.stdout).toMatch(/^\| nginx proxy_cache \(1 worker, \/dev\/shm\) \| 64 KiB \| [\d,]+ \| [\d.]+ \|$/m);
    expect(r.stdout).toMatch(/^RSS .* growth [\d.]+ MiB/m);
  }, 70_000);

  it('counters.js: threads count every request into the shared state', () => {
    // the script exits 1 when the counters do not add up to threads x iterations
    const r = bench('counters.js', ['--threads', '2', '--iterations', '20000', '--rounds', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| 2 \| [\d.,]+ \|/m);
  }, 70_000);

  it('side-by-side.js: two corelb builds under the same load, one round', () => {
    // the script throws (exit 1) on any error, timeout or non-2xx answer in a round
    const r = bench('side-by-side.js', ['--a', 'corelb', '--b', 'corelb', '--rounds', '1', '--requests', '2000']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| 1 \| [\d.,]+ \| [\d.,]+ \| [\d.]+ \| 2,000 \| 2,000 \|$/m);
  }, 70_000);

  it('side-by-side.js --load wrk: both sides under wrk at once, one round', () => {
    const r = bench('side-by-side.js', ['--a', 'corelb', '--b', 'corelb', '--rounds', '1', '--load', 'wrk', '--seconds', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/load: wrk;/);
    expect(r.stdout).toMatch(/^\| 1 \| [\d.,]+ \| [\d.,]+ \| [\d.]+ \| [\d,]+ \| [\d,]+ \|$/m);
  }, 70_000);

  it('side-by-side.js --a floor: the least proxy of corelb\'s parts answers every request, one round', () => {
    const r = bench('side-by-side.js', ['--a', 'floor', '--b', 'corelb', '--rounds', '1', '--requests', '2000']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^A = floor /m);
    expect(r.stdout).toMatch(/^\| 1 \| [\d.,]+ \| [\d.,]+ \| [\d.]+ \| 2,000 \| 2,000 \|$/m);
  }, 70_000);

  it('debian-tools.js: a tool that cannot be installed here is named with its apt-get line and left out', () => {
    // no PATH: wrk (in /usr/bin) is not found, and neither is apt-get, so nothing is installed
    const module = new URL('../../native-free-bench/debian-tools.js', import.meta.url).href;
    const code = `import { installMissing } from '${module}'; console.log(JSON.stringify(installMissing(['wrk'], (line) => console.log(line))));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { PATH: '' }, timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('bench: missing wrk; `apt-get install wrk` as root adds it\n["wrk"]\n');
  });

  it('run.js --dry-run: the plan of a default run and of --quick, nothing measured', () => {
    const r = bench('run.js', ['--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\d+ rows planned, about \d/m);
    expect(r.stdout).toMatch(/^  get-2B \(load (wrk|autocannon)\): 3 round\(s\) of direct, corelb-w1/m);
    const q = bench('run.js', ['--quick', '--dry-run']);
    expect(q.stdout).toMatch(/^  new-conn \(load (wrk|autocannon)\): 1 round\(s\)/m);
    expect(q.stdout).not.toMatch(/^  idle-10k/m);
  });

  it('run.js: one autocannon row of corelb, its table and results in --out', () =>
    withOut((out) => {
      const r = bench('run.js', ['--load', 'autocannon', '--scenarios', 'get-2B', '--only', 'corelb-w1', '--rounds', '1', '--warmup', '0', '--duration', '1', '--no-upstream-client', '--out', out]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('[1/1] ');
      expect(r.stdout).toMatch(/^\| get-2B \| corelb workers=1 \| [\d,]+ \|.*\| 0 \/ 0 \|$/m);
      expect(readdirSync(out).sort()).toEqual(['latest.json', 'latest.md', 'latest.svg']);
    }), 70_000);

  it('run.js: SIGINT writes the rows measured so far, stops its children and exits 130', () =>
    withOut(async (out) => {
      const args = ['--load', 'autocannon', '--scenarios', 'get-2B', '--only', 'corelb-w1', '--rounds', '3', '--warmup', '0', '--duration', '1', '--no-upstream-client', '--out', out];
      const child = spawn(process.execPath, [join(ROOT, 'native-free-bench', 'run.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let sent = false;
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        stdout += d;
        if (!sent && stdout.includes('[1/3] ')) {
          sent = true;
          child.kill('SIGINT'); // one row done, the second under way
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code, stdout).toBe(130);
      const md = readFileSync(join(out, 'latest.md'), 'utf8');
      expect(md).toContain('**Interrupted (SIGINT) after 1 of 3 planned rows**');
      expect(md).toMatch(/^\| get-2B \| corelb workers=1 \| [\d,]+ \|/m);
      const pids = (JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as { rows: { pid: number }[] }).rows.map((r) => r.pid);
      for (const pid of pids) expect(existsSync(`/proc/${pid}`), `corelb pid ${pid} still running`).toBe(false);
    }), 70_000);

  it('tls-reload.js: both ways of swapping certificates measured, one row each, the swaps done (swap-names deletes a router that open connections still use: why corelb swaps apps)', () => {
    const r = bench('tls-reload.js', ['--duration', '1', '--every', '100']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^net\.ipv4\.tcp_migrate_req = \S+; 1000 ms per mode/m);
    expect(r.stdout).toMatch(/^\| swap-app \| [1-9]\d* \| [1-9]\d* \| \d+ \| [1-9]\d* \| ok \|$/m);
    expect(r.stdout).toMatch(/^\| swap-names \| .* \|$/m);
  }, 70_000);

  it('tls.js: corelb and nginx terminating TLS 1.3, keep-alive and new connections, one round, no errors', () => {
    const r = bench('tls.js', ['--rounds', '1', '--duration', '1']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const scenario of ['https-keepalive', 'https-new-conn']) {
      for (const label of ['corelb workers=1', 'nginx [\\d.]+']) expect(r.stdout).toMatch(new RegExp(`^\\| ${scenario} \\| ${label} \\| [\\d,]+ \\| [\\d.]+ \\| [\\d.]+ \\| 0 \\|$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^\\| ${scenario} \\| corelb / nginx \\| [\\d.]+x \\| [\\d.]+x \\|`, 'm'));
    }
  }, 70_000);

  it('websocket.js: corelb and nginx relaying WebSocket echoes (32 B, 64 KiB) and holding idle WebSockets, one round', () => {
    const r = bench('websocket.js', ['--rounds', '1', '--duration', '1', '--idle', '200']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const scenario of ['echo 32 B', 'echo 64 KiB']) {
      for (const target of ['corelb', 'nginx']) expect(r.stdout).toMatch(new RegExp(`^\\| ${scenario} \\| ${target} \\| \\d+ \\| [\\d.]+ \\|`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^\\| ${scenario} \\| corelb / nginx \\| [\\d.]+x \\| [\\d.]+x \\|`, 'm'));
    }
    expect(r.stdout).toMatch(/^\| 200 idle WebSockets \| corelb \| +\| +\| [\d.]+ \| [\d.]+ \|/m);
  }, 70_000);

  it('scaling.js --dry-run: workers 1..N and the nginx control planned', () => {
    const r = bench('scaling.js', ['--dry-run', '--max', '3']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^corelb scaling: workers 1, 2, 3 \(and nginx/m);
    expect(r.stdout).toMatch(/^18 rows planned/m);
  });

  it('profile.js --cpu-prof: the real data plane writes a profile per thread, the worker thread has the request path', () => {
    const r = bench('profile.js', ['--cpu-prof', '--duration', '1']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/thread 1: a worker thread, the request path/);
    expect(r.stdout).toMatch(/\| dist\/(?:front|proxy|upstream)\/[\w-]+\.js:\d+ \|$/m);
  }, 70_000);

  it('run.js with wrk: the main figure, corelb, nginx and HAProxy against the C origin, one row each', () =>
    withOut((out) => {
      const wrk = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => existsSync(p));
      if (!wrk) throw new Error('wrk not found: install it with `apt-get install -y wrk nginx haproxy` (.ci/run does)');
      const r = bench('run.js', ['--scenarios', 'get-2B', '--only', 'corelb-w1,nginx,haproxy', '--rounds', '1', '--warmup', '0', '--duration', '1', '--no-upstream-client', '--out', out]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('load wrk, origin nginx static');
      for (const label of ['corelb workers=1', 'nginx [\\d.]+', 'HAProxy [\\d.]+']) {
        expect(r.stdout).toMatch(new RegExp(`^\\| get-2B \\| ${label} \\| [\\d,]+ \\|.*\\| 0 / 0 \\|$`, 'm'));
      }
      expect(r.stdout).toMatch(/^\| get-2B \| corelb workers=1 \/ nginx \| [\d.]+x/m);
    }), 70_000);
});
