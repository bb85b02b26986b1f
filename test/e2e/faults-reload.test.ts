// SIGHUP hot reload under load (3-backend pool, 2 workers, backends in their own processes): a
// rewritten config that adds a fourth backend and removes one is applied without one failed
// request, after which the new backend gets traffic and the removed one none; a broken config is
// rejected with its problem (FILE:LINE:COL path: message) and the running config keeps serving.
import { writeFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, startCorelb, toYaml, type ConfigSpec } from '../helpers/corelb.js';
import { logTime, stateLines, waitForState } from '../helpers/fault-logs.js';
import { describeLoad, sleep, startLoad, windowOf } from '../helpers/load.js';
import { startOriginProcess } from '../helpers/origin-process.js';

const T = 60_000;

afterEach(stopEverything);
afterAll(stopEverything);

describe('SIGHUP reload under load', () => {
  it('adds a backend and removes one with no failed request; a broken file is rejected and the running config keeps serving', async () => {
    const [b1, b2, b3, b4] = await Promise.all(['b1', 'b2', 'b3', 'b4'].map((id) => startOriginProcess({ id })));
    const spec = (urls: string[]): ConfigSpec => ({ workers: 2, pools: { web: urls } });
    const lb = await startCorelb(corelbConfig(spec([b1!.url, b2!.url, b3!.url])));
    const load = await startLoad({ url: `${lb.url}/work`, concurrency: 8, maxRequests: 300_000, maxDurationMs: 20_000 });
    await load.waitFor((s) => ['b1', 'b2', 'b3'].every((id) => (s.byBackend[id] ?? 0) >= 30), 15_000, 'traffic on b1..b3');

    // 1. b1, b2, b4: b4 added, b3 removed
    writeFileSync(lb.configFile, toYaml(corelbConfig({ ...spec([b1!.url, b2!.url, b4!.url]), port: lb.port })));
    const hupAt = Date.now();
    process.kill(lb.pid, 'SIGHUP');
    const reloaded = await lb.waitForLog((l) => l.msg === 'reloaded', 10_000);
    await load.waitFor((s) => (s.byBackend.b4 ?? 0) >= 30, 10_000, 'traffic on the added backend b4');
    await sleep(500);

    // 2. a broken file: the running config (b1, b2, b4) stays
    const broken = toYaml(corelbConfig({ ...spec([b1!.url, b2!.url, b3!.url]), port: lb.port })).replace('algorithm: round-robin', 'algorithm: fastest');
    const line = broken.split('\n').findIndex((l) => l.includes('algorithm: fastest')) + 1;
    expect(line).toBeGreaterThan(0);
    writeFileSync(lb.configFile, broken);
    const badAt = Date.now();
    process.kill(lb.pid, 'SIGHUP');
    const rejected = await lb.waitForLog((l) => l.msg === 'reload rejected', 10_000);
    await sleep(1000);
    const r = await load.stop();

    const t = (epoch: number) => epoch - r.startedAt;
    const afterReload = windowOf(r, t(logTime(reloaded)) + 300, t(badAt));
    const afterReject = windowOf(r, t(logTime(rejected)) + 100, Number.MAX_SAFE_INTEGER);
    console.log(
      [
        describeLoad('SIGHUP reload under load', r),
        `  reloaded ${logTime(reloaded) - hupAt} ms after SIGHUP; after it: ${JSON.stringify(afterReload.byBackend)} (${afterReload.failed} failed / ${afterReload.total})`,
        `  broken file rejected ${logTime(rejected) - badAt} ms after SIGHUP: ${JSON.stringify(rejected.problems)}; after it: ${JSON.stringify(afterReject.byBackend)} (${afterReject.failed} failed / ${afterReject.total})`,
      ].join('\n'),
    );

    expect(r.failed, describeLoad('reload', r)).toBe(0);
    expect(reloaded.level).toBe(30);
    expect(windowOf(r, 0, t(hupAt)).byBackend.b3 ?? 0).toBeGreaterThan(0);
    expect(afterReload.byBackend.b3 ?? 0, 'answers from the removed backend after the reload').toBe(0);
    for (const id of ['b1', 'b2', 'b4']) expect(afterReload.byBackend[id] ?? 0, id).toBeGreaterThan(0);

    expect(rejected.level).toBe(50);
    expect(Array.isArray(rejected.problems), JSON.stringify(rejected)).toBe(true);
    const problems = rejected.problems as unknown[];
    expect(problems.some((p) => typeof p === 'string' && p.startsWith(`${lb.configFile}:${line}:`) && p.includes('pools.web.algorithm')), JSON.stringify(problems)).toBe(true);
    expect(afterReject.total).toBeGreaterThan(50);
    expect(afterReject.byBackend.b3 ?? 0, 'the rejected file named b3: it must not have been applied').toBe(0);
    for (const id of ['b1', 'b2', 'b4']) expect(afterReject.byBackend[id] ?? 0, id).toBeGreaterThan(0);
    expect(lb.proc.exitCode).toBeNull();
    expect(lb.proc.signalCode).toBeNull();
  }, T);

  it('health verdicts survive a reload: a backend that is down stays down (and gets no traffic) after a SIGHUP that re-weights the pool', async () => {
    const [b1, b2, b3] = await Promise.all(['b1', 'b2', 'b3'].map((id) => startOriginProcess({ id })));
    const health = { path: '/healthz', interval: '200ms', timeout: '150ms', rise: 2, fall: 1 };
    const spec = (w: number): ConfigSpec => ({
      workers: 2,
      pools: { web: { health, passive: false, backends: [{ url: b1!.url, weight: w }, b2!.url, b3!.url] } },
    });
    const lb = await startCorelb(corelbConfig(spec(1)));
    await b2!.setMode('error500'); // fails its health checks from now on
    await waitForState(lb, b2!.url, 'down', { timeoutMs: 5000 });
    writeFileSync(lb.configFile, toYaml(corelbConfig({ ...spec(3), port: lb.port })));
    process.kill(lb.pid, 'SIGHUP');
    await lb.waitForLog((l) => l.msg === 'reloaded', 10_000);
    const r = await (await startLoad({ url: `${lb.url}/after`, concurrency: 4, maxRequests: 400, maxDurationMs: 10_000 })).done;
    console.log(`[health across reload] after the reload: ${JSON.stringify(r.byBackend)}, ${r.failed} failed / ${r.total}`);
    expect(r.failed, describeLoad('after reload', r)).toBe(0);
    expect(r.byBackend.b2 ?? 0).toBe(0);
    expect(r.byBackend.b1).toBeGreaterThan(2 * (r.byBackend.b3 ?? 0)); // the new weight 3:1 applies
    expect(stateLines(lb, b2!.url).map((l) => l.to)).toEqual(['down']); // no flip back up by the reload
  }, T);
});
