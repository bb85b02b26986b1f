// The command line an operator types: help, version, strict flags, and a start that fails loudly.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT } from '../helpers/corelb.js';

function corelb(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('corelb command line', () => {
  it.each([['--help'], ['-h'], ['start', '--help']])('%s prints usage and exits 0', (...args) => {
    const r = corelb(...args);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: corelb <command>/);
    expect(r.stdout).toMatch(/check/);
  });

  it('--version prints the package version', () => {
    const r = corelb('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^corelb \d+\.\d+\.\d+\n$/);
  });

  it.each([
    [['--frobnicate'], /unknown option --frobnicate/],
    [['start', '--port', '80'], /unknown option --port/],
    [['launch'], /unknown command launch/],
    [['start', '--config'], /--config needs a file/],
    [['check', 'a.yaml', 'extra'], /unexpected argument extra/],
    [['check', '--config', 'a.yaml', 'extra'], /unexpected argument extra/],
    [['start', '--print'], /--print goes with check/],
  ])('%j is an error with usage', (args, message) => {
    const r = corelb(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: corelb/);
  });

  it('start with an invalid config prints each problem and exits 1 without serving', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corelb-cli-'));
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'listen: { port: 99999 }\npools:\n  web:\n    backends: [ "ftp://x" ]\n');
    const r = corelb('start', '--config', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:1:`);
    expect(r.stderr).toMatch(/listen\.port/);
    expect(r.stderr).toMatch(/pools\.web\.backends\[0\]/);
  });

  it('start on a port already in use exits 1 with the reason, without aborting', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const dir = mkdtempSync(path.join(tmpdir(), 'corelb-cli-'));
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, `listen: { host: 127.0.0.1, port: ${port} }\nworkers: 2\npools:\n  web:\n    backends: [ "http://127.0.0.1:9" ]\n`);
    const r = corelb('start', '--config', file);
    blocker.close();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/corelb: address 127\.0\.0\.1:\d+ is already in use/);
    expect(r.stderr).not.toMatch(/Aborted|core dumped|uv_loop_close/);
  });
});
