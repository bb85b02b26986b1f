// state_file with a real corelb: an admin drain, a weight override and a passive ejection are
// written to the file as they happen; a restarted corelb (a new supervisor, and a data plane the
// supervisor restarts after a SIGKILL) comes back with all three, and routes accordingly; an
// entry for a backend no longer in the config is ignored and logged; a corrupt file is a warning
// and corelb starts; GET /config shows the weight override and masks the token.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient, type Status } from '../helpers/admin.js';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, startCorelb, type Corelb } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';
import { eventually, startOrigin, type Origin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';
import { sleep } from '../helpers/time.js';

const TOKEN = 'state-token-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'corelb-state-'));

afterEach(stopEverything);
afterAll(async () => {
  await stopEverything();
  rmSync(dir, { recursive: true, force: true });
});

interface Kept {
  pool: string;
  backend: string;
  draining: boolean;
  weight: number | null;
  ejectedUntil: number;
  ejections: number;
}

function keptIn(file: string): Kept[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as { backends: Kept[] }).backends;
}

function backendOf(s: Status, url: string) {
  const b = s.pools[0]!.backends.find((x) => x.url === url);
  if (b === undefined) throw new Error(`no ${url} in /status`);
  return b;
}

/** a and b answer 200 with their name; c answers 500 (passive checks eject it). */
async function origins(): Promise<[Origin, Origin, Origin]> {
  const named = (name: string, status: number) =>
    startOrigin((_req, res) => {
      res.writeHead(status, { 'x-origin': name });
      res.end(name);
    });
  return Promise.all([named('a', 200), named('b', 200), named('c', 500)]);
}

async function start(stateFile: string, backends: string[], adminPort: number): Promise<{ lb: Corelb; admin: AdminClient }> {
  const cfg = corelbConfig({
    workers: 2,
    pools: { web: { backends, retries: 0, passive: { failures: 2, window: '10s', eject: '1m' } } },
    admin: { port: adminPort, token: TOKEN },
  });
  const lb = await startCorelb({ ...cfg, state_file: stateFile });
  return { lb, admin: adminClient(`http://127.0.0.1:${adminPort}`, TOKEN) };
}

describe('state_file', () => {
  it('keeps drains, weight overrides and ejections across a restart and a data-plane restart', async () => {
    const [a, b, c] = await origins();
    const file = join(dir, 'kept.json');
    const adminPort = await freePort();
    const urls = [a.url, b.url, c.url];
    const first = await start(file, urls, adminPort);

    expect((await first.admin.post('/backends/drain', { backend: b.url })).status).toBe(200);
    expect(keptIn(file)).toEqual([{ pool: 'web', backend: b.url, draining: true, weight: null, ejectedUntil: 0, ejections: 0 }]);
    expect((await first.admin.post('/backends/weight', { backend: a.url, weight: 4 })).status).toBe(200);
    expect(keptIn(file).find((k) => k.backend === a.url)?.weight).toBe(4);

    // c answers 500: two failures within the window eject it for a minute
    const before = Date.now();
    for (let k = 0; k < 12 && !keptIn(file).some((x) => x.backend === c.url); k++) {
      await request(`${first.lb.url}/x`);
      await sleep(120); // the primary judges every 100 ms
    }
    const ejected = keptIn(file).find((k) => k.backend === c.url);
    expect(ejected?.ejections).toBe(1);
    expect(ejected!.ejectedUntil).toBeGreaterThanOrEqual(before + 60_000);
    expect(ejected!.ejectedUntil).toBeLessThanOrEqual(Date.now() + 60_000);

    // GET /config: the override applied, the token masked
    const cfg = (await first.admin.get('/config')).text;
    expect(cfg).not.toContain(TOKEN);
    const shown = JSON.parse(cfg) as { admin: { token: string }; stateFile: string; pools: { backends: { url: string; weight: number }[] }[] };
    expect(shown.admin.token).toBe('(set, not shown)');
    expect(shown.stateFile).toBe(file);
    expect(shown.pools[0]!.backends.map((x) => x.weight)).toEqual([4, 1, 1]);

    await first.lb.stop();

    // a new corelb on the same file: b draining, a at weight 4, c still ejected
    const second = await start(file, urls, adminPort);
    await second.lb.waitForLog((l) => l.msg === 'state file loaded' && l.backends === 3);
    const s = await second.admin.status();
    expect(backendOf(s, a.url)).toMatchObject({ state: 'up', weight: 4 });
    expect(backendOf(s, b.url).state).toBe('draining');
    expect(backendOf(s, c.url).state).toBe('down');
    const seen = new Set<string>();
    for (let k = 0; k < 6; k++) {
      const r = await request(`${second.lb.url}/x`);
      expect(r.status).toBe(200);
      seen.add(r.text);
    }
    expect([...seen]).toEqual(['a']);

    // the supervisor restarts a killed data plane: it reads the file again
    const from = second.lb.logs().length;
    process.kill(second.lb.dataPlanePid(), 'SIGKILL');
    await second.lb.waitForReadyAfter(from, 20_000);
    const again = await second.admin.status();
    expect(backendOf(again, a.url).weight).toBe(4);
    expect(backendOf(again, b.url).state).toBe('draining');
    expect(backendOf(again, c.url).state).toBe('down');

    // enable: written at once, and gone from the file when nothing else is kept of b
    expect((await second.admin.post('/backends/enable', { backend: b.url })).status).toBe(200);
    expect(keptIn(file).some((k) => k.backend === b.url)).toBe(false);
  });

  it('ignores and logs entries for backends no longer configured; a corrupt file is a warning', async () => {
    const [a, b] = await origins();
    const file = join(dir, 'stale.json');
    const gone = 'http://127.0.0.1:1';
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        backends: [
          { pool: 'web', backend: gone, draining: true, weight: null, ejectedUntil: 0, ejections: 0 },
          { pool: 'other', backend: a.url, draining: true, weight: null, ejectedUntil: 0, ejections: 0 },
          { pool: 'web', backend: b.url, draining: true, weight: 2, ejectedUntil: 0, ejections: 0 },
        ],
      }),
    );
    const adminPort = await freePort();
    const { lb, admin } = await start(file, [a.url, b.url], adminPort);
    await lb.waitForLog((l) => l.level === 40 && l.backend === gone && String(l.msg).includes('not in the configuration'));
    await lb.waitForLog((l) => l.level === 40 && l.pool === 'other' && String(l.msg).includes('not in the configuration'));
    const s = await admin.status();
    expect(backendOf(s, a.url).state).toBe('up'); // the entry of another pool did not drain it
    expect(backendOf(s, b.url)).toMatchObject({ state: 'draining', weight: 2 });
    await eventually(() => keptIn(file).length === 1, 5000, 'the stale entries dropped from the file');
    await lb.stop();

    writeFileSync(file, '{"version": 1, "backends": [');
    const second = await start(file, [a.url, b.url], adminPort);
    await second.lb.waitForLog((l) => l.level === 40 && String(l.msg).includes('is not valid JSON'));
    expect((await request(`${second.lb.url}/x`)).status).toBe(200);
    expect(backendOf(await second.admin.status(), b.url).state).toBe('up');
  });
});
