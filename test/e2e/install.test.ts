// The production install, as the README gives it: `npm pack` (its prepack builds dist/) makes a
// tarball with dist/, the reference config, README and LICENSE and nothing of src/ or test/;
// `npm install -g --prefix P --omit=dev` of that tarball (packages from the npm cache where it has
// them) leaves only the runtime dependencies on disk and a `corelb` command that runs: --version,
// check of the shipped reference config, and a start that proxies a request and stops on SIGTERM.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopEverything } from '../helpers/cleanup.js';
import { REPO_ROOT, startCorelb } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';
import { startOrigin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'corelb-install-'));
afterAll(async () => {
  await stopEverything();
  rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('production install', () => {
  it('npm pack, then npm install -g --omit=dev of the tarball: a working corelb with only runtime dependencies', { timeout: 300_000 }, async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], REPO_ROOT)) as { filename: string; files: { path: string }[] }[];
    const files = packed[0]!.files.map((f) => f.path);
    for (const f of ['dist/cli.js', 'dist/worker/serve.js', 'config/corelb.yaml', 'config/demo.yaml', 'config/systemd/corelb.service', 'config/logrotate/corelb', 'README.md', 'LICENSE', 'package.json']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.map') || f.startsWith('native-free-bench/'))).toEqual([]);

    const prefix = join(dir, 'prefix');
    run('npm', ['install', '--global', '--prefix', prefix, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(dir, packed[0]!.filename)], dir);
    const installed = join(prefix, 'lib', 'node_modules', 'corelb');
    const deps = readdirSync(join(installed, 'node_modules'));
    for (const d of Object.keys(pkg.dependencies)) expect(deps, d).toContain(d);
    for (const d of Object.keys(pkg.devDependencies)) expect(deps, `dev dependency ${d}`).not.toContain(d.split('/')[0]);
    expect(existsSync(join(installed, 'src'))).toBe(false);

    // the bin link runs through its shebang
    const bin = join(prefix, 'bin', 'corelb');
    expect(run(bin, ['--version'], dir)).toBe(`corelb ${pkg.version}\n`);
    expect(run(bin, ['check', join(installed, 'config', 'corelb.yaml')], dir)).toMatch(/^ok: .*corelb\.yaml \(3 pools, 7 backends, \d+ workers?\)\n$/);

    const origin = await startOrigin((_req, res) => res.end('from the origin'));
    const yaml = `listen: { port: ${await freePort()} }\nworkers: 1\npools:\n  web: { backends: [${origin.url}] }\n`;
    const lb = await startCorelb(yaml, { cli: realpathSync(join(installed, 'dist', 'cli.js')) });
    const r = await request(`${lb.url}/`);
    expect([r.status, r.text]).toEqual([200, 'from the origin']);
    expect(await lb.stop('SIGTERM')).toEqual({ code: 0, signal: null, killedAfterTimeout: false });
  });
});
