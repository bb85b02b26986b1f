// Logs to a file (log.file): access lines with every documented field land in the file, not on
// stdout; rotation (rename, then SIGUSR1 to the supervisor) loses no line and sends the later
// ones to a new file at the original path; a log.file in a missing directory is a located
// problem for `corelb check`; SIGUSR1 without a file and a reload that changes log.file leave the
// proxy serving.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT, corelbConfig, readLogFile, startCorelb, toYaml, waitForLogFile, type LogLine } from '../helpers/corelb.js';
import { echoOrigin } from '../helpers/origins.js';
import { request } from '../helpers/http.js';
import { sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'corelb-logs-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  await stopEverything();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
afterAll(stopEverything);

const access = (lines: LogLine[]): LogLine[] => lines.filter((l) => l.msg === 'access');

/** Polls until `file` holds at least n access lines. */
async function waitForAccessLines(file: string, n: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (access(readLogFile(file)).length < n) {
    if (Date.now() > until) throw new Error(`${file}: ${access(readLogFile(file)).length} access lines, expected ${n}`);
    await sleep(25);
  }
}

describe('log.file', () => {
  it('access lines go to the file, not to stdout, with every documented field', async () => {
    const origin = await echoOrigin('web');
    const file = join(tempDir(), 'corelb.log');
    const workers = 2;
    const lb = await startCorelb(corelbConfig({ workers, log: { access: true, file }, pools: { web: [origin.url] } }));
    const get = await request(`${lb.url}/a/b?x=1`);
    const post = await request(`${lb.url}/post`, { method: 'POST', body: 'hello' });
    const more = await request(`${lb.url}/more`);
    for (const r of [get, post, more]) expect(r.status).toBe(200);
    await waitForAccessLines(file, 3);
    const exit = await lb.stop('SIGTERM');
    expect(exit.code, lb.stderr()).toBe(0);

    const lines = readLogFile(file);
    expect(lb.stdout(), 'nothing on stdout: every writer logs to the file').toBe('');
    // the startup summary, the supervisor's lines and the stop are in the file too
    expect(lines.some((l) => l.msg === 'ready' && l.listen === `127.0.0.1:${lb.port}` && l.workers === workers)).toBe(true);
    expect(lines.some((l) => l.role === 'supervisor' && l.msg === 'data plane started')).toBe(true);
    expect(lines.some((l) => l.role === 'supervisor' && l.msg === 'supervisor exiting')).toBe(true);

    const byPath = new Map(access(lines).map((l) => [l.path, l]));
    expect(access(lines)).toHaveLength(3);
    const cases = [
      { path: '/a/b', method: 'GET', reply: get, bytesIn: 0 }, // the path, without the query
      { path: '/post', method: 'POST', reply: post, bytesIn: 5 },
      { path: '/more', method: 'GET', reply: more, bytesIn: 0 },
    ];
    for (const c of cases) {
      const l = byPath.get(c.path);
      expect(l, `no access line for ${c.path}: ${JSON.stringify(access(lines))}`).toBeDefined();
      expect(l!.method).toBe(c.method);
      expect(l!.status).toBe(200);
      expect(l!.backend).toBe(origin.url);
      expect(l!.bytesIn).toBe(c.bytesIn);
      expect(l!.bytesOut).toBe(c.reply.body.length);
      expect(typeof l!.upstreamMs).toBe('number');
      expect(typeof l!.durationMs).toBe('number');
      expect(l!.upstreamMs as number).toBeGreaterThanOrEqual(0);
      expect(l!.durationMs as number).toBeGreaterThanOrEqual(l!.upstreamMs as number);
      // the id corelb sent to the backend (the echo shows the request headers it received)
      const echoed = JSON.parse(c.reply.text) as { headers: Record<string, string> };
      expect(l!.reqId).toBe(echoed.headers['x-request-id']);
      expect(Number.isInteger(l!.worker)).toBe(true);
      expect(l!.worker as number).toBeGreaterThanOrEqual(0);
      expect(l!.worker as number).toBeLessThan(workers);
      expect(l!.level).toBe(30);
    }
  }, T);

  it('rotation: rename the file, SIGUSR1 to the supervisor; later lines go to a new file, none is lost', async () => {
    const origin = await echoOrigin('web');
    const dir = tempDir();
    const file = join(dir, 'corelb.log');
    const rotated = join(dir, 'corelb.log.1');
    const lb = await startCorelb(corelbConfig({ workers: 2, log: { access: true, file }, pools: { web: [origin.url] } }));
    const batch = async (name: string, n: number): Promise<void> => {
      const rs = await Promise.all(Array.from({ length: n }, (_, i) => request(`${lb.url}/${name}/${i}`)));
      for (const r of rs) expect(r.status).toBe(200);
    };
    await batch('before', 20);
    await waitForAccessLines(file, 20);
    renameSync(file, rotated); // what logrotate does
    // until the reopen, the writers still hold the renamed file open: these land there
    await batch('between', 10);
    process.kill(lb.pid, 'SIGUSR1');
    const reopened = await waitForLogFile(file, (l) => l.msg === 'logs reopened');
    expect(reopened.workers).toBe(2);
    await batch('after', 20);
    const exit = await lb.stop('SIGTERM');
    expect(exit.code, lb.stderr()).toBe(0);

    const oldLines = readLogFile(rotated);
    const newLines = readLogFile(file);
    const paths = [...access(oldLines), ...access(newLines)].map((l) => String(l.path));
    const expected = [...['before', 'between', 'after'].flatMap((n) => Array.from({ length: n === 'between' ? 10 : 20 }, (_, i) => `/${n}/${i}`))];
    // exactly one line per request across the two files
    expect(paths.sort()).toEqual(expected.sort());
    expect(access(newLines).every((l) => String(l.path).startsWith('/after/')), 'the new file holds only requests after the reopen').toBe(true);
    expect(access(newLines)).toHaveLength(20);
    // the supervisor reopened too: its last line is in the new file
    expect(newLines.some((l) => l.role === 'supervisor' && l.msg === 'supervisor exiting')).toBe(true);
    expect(oldLines.some((l) => l.msg === 'logs reopened')).toBe(false);
  }, T);

  it('a reopen that fails (the directory went away) keeps the old file and the proxy serving', async () => {
    const origin = await echoOrigin('web');
    const dir = tempDir();
    const file = join(dir, 'logs', 'corelb.log');
    mkdirSync(join(dir, 'logs'));
    const lb = await startCorelb(corelbConfig({ workers: 2, log: { access: true, file }, pools: { web: [origin.url] } }));
    const moved = join(dir, 'moved');
    renameSync(join(dir, 'logs'), moved);
    process.kill(lb.pid, 'SIGUSR1');
    // every writer still holds the moved file: the failures are logged there
    const warn = await waitForLogFile(join(moved, 'corelb.log'), (l) => l.msg === 'logs reopened, but not by every writer: some still write to the old file');
    expect(warn).toMatchObject({ primary: false, workers: 0, expected: 2 });
    expect((await request(`${lb.url}/still`)).status).toBe(200);
    const exit = await lb.stop('SIGTERM');
    expect(exit.code, lb.stderr()).toBe(0);
    const lines = readLogFile(join(moved, 'corelb.log'));
    expect(lines.filter((l) => l.msg === 'cannot reopen the log file: still writing to the old one').length).toBe(4); // supervisor, primary, 2 workers
    expect(access(lines).map((l) => l.path)).toEqual(['/still']);
  }, T);

  it('corelb check reports a log.file in a missing directory at log.file', () => {
    const dir = tempDir();
    const config = join(dir, 'corelb.yaml');
    writeFileSync(config, toYaml(corelbConfig({ port: 8080, log: { file: join(dir, 'nope', 'corelb.log') }, pools: { web: ['http://127.0.0.1:3001'] } })));
    const r = spawnSync(process.execPath, [CLI, 'check', '--config', config], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/:\d+:\d+ log\.file: directory .*\/nope does not exist/);
  });
});

describe('SIGUSR1 and log.file without a file', () => {
  it('SIGUSR1 on stdout logging reopens nothing and the proxy keeps serving; a reload keeps log.file', async () => {
    const origin = await echoOrigin('web');
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: [origin.url] } }));
    process.kill(lb.pid, 'SIGUSR1');
    const reopened = await lb.waitForLog((l) => l.msg === 'logs reopened');
    expect(reopened.level).toBe(30);
    // handled, so Node's own use of SIGUSR1 (starting the inspector) does not happen
    expect(lb.stderr()).not.toContain('Debugger listening');
    expect((await request(`${lb.url}/still`)).status).toBe(200);

    // log.file changes only on restart: the reload warns and keeps stdout
    const file = join(tempDir(), 'later.log');
    writeFileSync(lb.configFile, toYaml(corelbConfig({ port: lb.port, workers: 2, log: { file }, pools: { web: [origin.url] } })));
    const from = lb.logs().length;
    process.kill(lb.pid, 'SIGHUP');
    const warn = await lb.waitForLogAfter(from, (l) => l.msg !== undefined && l.msg.includes('change only on restart'));
    expect(warn.fields).toEqual(['log.file']);
    await lb.waitForLogAfter(from, (l) => l.msg === 'reloaded');
    expect((await request(`${lb.url}/after-reload`)).status).toBe(200);
    expect(existsSync(file)).toBe(false);

    const exit = await lb.stop('SIGTERM');
    expect(exit.code, lb.stderr()).toBe(0);
    expect(lb.logs().some((l) => l.msg === 'stopped')).toBe(true);
  }, T);
});
