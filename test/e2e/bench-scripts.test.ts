// The bench scripts drive corelb's own modules and CLI: a smoke run of each with tiny, bounded
// loads, so that a change to those interfaces cannot leave `npm run bench` measuring errors
// (the upstream-client run once counted every request as an error after a parser change).
// Speed is not asserted here; only that every request succeeded. Needs `npm run build` first.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function bench(script: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'native-free-bench', script), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bench scripts', () => {
  it('upstream-client.js: every client completes its requests without errors', () => {
    const r = bench('upstream-client.js', ['--requests', '2000', '--warmup-requests', '200', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { clients: { client: string; requests: number; errors: number }[] };
    expect(result.clients.map((c) => c.client)).toEqual(['undici', 'corelb', 'raw-floor']);
    for (const c of result.clients) expect(c, c.client).toMatchObject({ requests: 2000, errors: 0 });
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
});
