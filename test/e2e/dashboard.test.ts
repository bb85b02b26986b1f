// The dashboard in a real browser: headless Chromium (the system's, from Debian: `.ci/run`
// installs it when missing) through playwright-core opens the admin page of a corelb under load
// (with a token, passed as ?token=), sees every backend of both pools with its state, sees the
// chart move between two moments, and saves a screenshot to docs/dashboard.png (the README's).
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin.js';
import { corelbConfig, REPO_ROOT, startCorelb } from '../helpers/corelb.js';
import { sleep, startLoad } from '../helpers/load.js';
import { startOrigin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 90_000;
const TOKEN = 'dashboard-token-0123456789';
const SCREENSHOT = path.join(REPO_ROOT, 'docs', 'dashboard.png');
const CHROMIUM_CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => typeof p === 'string' && p !== '');

let browser: Browser | null = null;
afterEach(async () => {
  await browser?.close();
  browser = null;
  await stopEverything();
});
afterAll(stopEverything);

function chromiumPath(): string {
  const found = CHROMIUM_CANDIDATES.find((p) => existsSync(p));
  if (found === undefined) {
    throw new Error(
      `Chromium not found (looked at ${CHROMIUM_CANDIDATES.join(', ')}): the dashboard test needs it. ` +
        'Install it with `apt-get install -y chromium` (.ci/run does), or set CHROMIUM_PATH to a Chromium binary.',
    );
  }
  return found;
}

/** An origin answering after `ms` (give or take 30%), so that backends differ in latency. */
function origin(ms: number) {
  return startOrigin(async (_req, res) => {
    await sleep(ms * (0.7 + 0.6 * Math.random()));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
  });
}

describe('dashboard', () => {
  it('shows every backend and a chart that moves, in headless Chromium, during load', async () => {
    const executablePath = chromiumPath();
    const web = await Promise.all([2, 5, 12].map(origin));
    const api = await Promise.all([20, 40].map(origin));
    const adminPort = await freePort();
    const lb = await startCorelb(
      corelbConfig({
        workers: 2,
        pools: {
          web: { backends: [web[0]!.url, { url: web[1]!.url, weight: 2 }, web[2]!.url] },
          api: { algorithm: 'least-connections', backends: api.map((o) => o.url) },
        },
        routes: [
          { path_prefix: '/api', pool: 'api' },
          { path_prefix: '/', pool: 'web' },
        ],
        admin: { port: adminPort, token: TOKEN },
      }),
    );
    const admin = adminClient(`http://127.0.0.1:${adminPort}`, TOKEN);
    const webLoad = await startLoad({ url: `${lb.url}/page`, concurrency: 6, maxRequests: 1_000_000, maxDurationMs: 40_000 });

    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${admin.url}/?token=${TOKEN}`);

    // every backend appears, with its state
    await page.waitForFunction(() => document.querySelectorAll('tr[data-backend]').length === 5, null, { timeout: 10_000 });
    for (const o of [...web, ...api]) await expect.poll(() => page.locator(`tr[data-backend="${o.url}"]`).count()).toBe(1);
    expect(await page.locator('section[data-pool="web"] tr[data-backend] .state.up').count()).toBe(3);
    await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', null, { timeout: 5000 });

    // the chart has a line, and it moves
    await page.waitForFunction(() => (document.getElementById('chart-rps')?.getAttribute('d') ?? '').includes('L'), null, { timeout: 10_000 });
    const before = await page.getAttribute('#chart-rps', 'd');
    const rpsBefore = await page.textContent('#total-rps');
    await sleep(2500);
    const after = await page.getAttribute('#chart-rps', 'd');
    expect(after, 'the req/s line did not change in 2.5 s').not.toBe(before);
    expect(Number(rpsBefore)).toBeGreaterThan(0);
    const webRow = page.locator(`tr[data-backend="${web[1]!.url}"] td`);
    expect(Number(await webRow.nth(4).textContent()), 'req/s of a busy backend').toBeGreaterThan(0);
    expect(await webRow.nth(6).textContent(), 'p99 of a busy backend').toMatch(/\d+(\.\d+)? (ms|s)$/);

    // more traffic (the api pool), then one backend drained: the screenshot shows the states
    const apiLoad = await startLoad({ url: `${lb.url}/api/items`, concurrency: 4, maxRequests: 1_000_000, maxDurationMs: 30_000 });
    await sleep(6000);
    const drained = await admin.post('/backends/drain', { pool: 'web', backend: web[2]!.url });
    expect(drained.status, drained.text).toBe(200);
    await page.waitForFunction((url) => document.querySelector(`tr[data-backend="${url}"] .state`)?.textContent === 'draining', web[2]!.url, { timeout: 5000 });
    await sleep(6000);
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(errors, 'errors in the page').toEqual([]);
    await Promise.all([webLoad.stop(), apiLoad.stop()]);
  }, T);
});
