// The supervisor `corelb start` runs in front of the data plane: restarts after a crash (with a
// growing back-off), graceful stop through it, no orphan when it dies, no restart loop when the
// first start fails, and signals it passes on without stopping the proxy; the data plane's GC flags.
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { corelbConfig, processAlive, startCorelb, toYaml, type Corelb, type LogLine } from '../helpers/corelb.js';
import { echoOrigin } from '../helpers/origins.js';
import { request } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { eventually, sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;

afterEach(stopEverything);
afterAll(stopEverything);


/** Time from now to the first 200 through the proxy, polling every 15 ms (bounded). */
async function msUntilServing(lb: Corelb, timeoutMs: number): Promise<number> {
  const start = performance.now();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await request(`${lb.url}/probe`, { timeoutMs: 1000 }).catch(() => null);
    if (r?.status === 200) return performance.now() - start;
    await sleep(15);
  }
  throw new Error(`no successful request within ${timeoutMs} ms\n${lb.stdout().slice(-3000)}`);
}

/** SIGKILLs the data plane; returns its pid and the log index before the kill. */
function killDataPlane(lb: Corelb): { pid: number; from: number } {
  const pid = lb.dataPlanePid();
  const from = lb.logs().length;
  process.kill(pid, 'SIGKILL');
  return { pid, from };
}

const supervisorLine = (msg: string) => (l: LogLine) => l.role === 'supervisor' && l.msg === msg;

async function startProxy(): Promise<Corelb> {
  const origin = await echoOrigin('web');
  const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: [origin.url] } }));
  expect((await request(`${lb.url}/before`)).status).toBe(200);
  return lb;
}

describe('supervisor', () => {
  it('restarts a SIGKILLed data plane: a new pid says ready and requests succeed again', async () => {
    const lb = await startProxy();
    const supervisorPid = lb.pid;
    expect(lb.dataPlanePid()).not.toBe(supervisorPid);
    // the data plane runs with the GC settings the supervisor gives it (one GC thread, a 1 MiB
    // young generation), before any node flag of the supervisor's own
    const flags = (pidNow: number) => readFileSync(`/proc/${pidNow}/cmdline`, 'utf8').split('\0');
    expect(flags(lb.dataPlanePid()).slice(1, 3)).toEqual(['--single-threaded-gc', '--max-semi-space-size=1']);
    const { pid, from } = killDataPlane(lb);
    const ms = await msUntilServing(lb, 15_000);
    console.log(`supervisor: SIGKILL of the data plane -> first successful proxied request after ${ms.toFixed(0)} ms`);
    const exited = await lb.waitForLogAfter(from, supervisorLine('data plane exited'));
    expect(exited.dataPlanePid).toBe(pid);
    expect(exited.signal).toBe('SIGKILL');
    const restarting = await lb.waitForLogAfter(from, supervisorLine('restarting data plane'));
    expect(restarting.inMs).toBe(100);
    expect(restarting.restarts).toBe(1);
    const ready = await lb.waitForReadyAfter(from);
    expect(ready.pid).not.toBe(pid);
    expect(lb.dataPlanePid()).toBe(ready.pid);
    expect(lb.pid).toBe(supervisorPid);
    expect(processAlive(supervisorPid)).toBe(true);
    expect((await request(`${lb.url}/after`)).status).toBe(200);
    expect(flags(lb.dataPlanePid()).slice(1, 3)).toEqual(['--single-threaded-gc', '--max-semi-space-size=1']); // a restart too
  }, T);

  it('two crashes in a row: the second restart waits longer', async () => {
    const lb = await startProxy();
    const first = killDataPlane(lb);
    await lb.waitForReadyAfter(first.from);
    const second = killDataPlane(lb);
    await lb.waitForReadyAfter(second.from);
    const backoffs = lb
      .logs()
      .filter(supervisorLine('restarting data plane'))
      .map((l) => [l.inMs, l.restarts]);
    expect(backoffs).toEqual([
      [100, 1],
      [200, 2],
    ]);
    expect(lb.dataPlanePid()).not.toBe(first.pid);
    expect(lb.dataPlanePid()).not.toBe(second.pid);
    expect((await request(`${lb.url}/after`)).status).toBe(200);
  }, T);

  it('SIGTERM to the supervisor: the data plane drains and both exit 0', async () => {
    const lb = await startProxy();
    const dataPlane = lb.dataPlanePid();
    const exit = await lb.stop('SIGTERM');
    expect(exit.killedAfterTimeout).toBe(false);
    expect(exit.signal).toBeNull();
    expect(exit.code, lb.stderr()).toBe(0);
    expect(processAlive(dataPlane)).toBe(false);
    const exited = lb.logs().find(supervisorLine('data plane exited'));
    expect(exited, lb.stdout()).toMatchObject({ dataPlanePid: dataPlane, code: 0, signal: null });
    expect(lb.logs().some((l) => l.msg === 'stopped' && l.pid === dataPlane)).toBe(true);
    expect(lb.logs().some(supervisorLine('restarting data plane'))).toBe(false);
  }, T);

  it('a data plane that does not stop within timeouts.drain + 5 s is SIGKILLed and the supervisor exits 1', async () => {
    const origin = await echoOrigin('web');
    const port = await freePort();
    const yaml = `listen: { host: 127.0.0.1, port: ${port} }\nworkers: 1\ntimeouts: { drain: 1s }\npools:\n  web:\n    backends: [ "${origin.url}" ]\n`;
    const lb = await startCorelb(yaml);
    const dataPlane = lb.dataPlanePid();
    // a frozen data plane cannot drain: only the supervisor's deadline ends it
    process.kill(dataPlane, 'SIGSTOP');
    const started = Date.now();
    const exit = await lb.stop('SIGTERM', 15_000);
    const tookMs = Date.now() - started;
    expect(exit.killedAfterTimeout).toBe(false);
    expect(exit.code).toBe(1);
    expect(tookMs).toBeGreaterThanOrEqual(5_900);
    expect(lb.logs().some(supervisorLine('data plane did not stop in time: killed')), lb.stdout()).toBe(true);
    await eventually(() => !processAlive(dataPlane), 5_000, `data plane ${dataPlane} to exit`);
  }, T);

  it('SIGKILL to the supervisor: the data plane stops by itself', async () => {
    const lb = await startProxy();
    const dataPlane = lb.dataPlanePid();
    process.kill(lb.pid, 'SIGKILL');
    await lb.exited();
    await eventually(() => !processAlive(dataPlane), 10_000, `data plane ${dataPlane} to exit`);
    expect(lb.logs().some((l) => l.pid === dataPlane && l.msg === 'stopped'), lb.stdout()).toBe(true);
  }, T);

  it('a first start that fails (admin port in use) exits 1 without restarting', async () => {
    const blocker = net.createServer();
    const adminPort = await freePort();
    await new Promise<void>((resolve) => blocker.listen(adminPort, '127.0.0.1', resolve));
    try {
      const origin = await echoOrigin('web');
      const started = Date.now();
      const cfg = corelbConfig({ workers: 2, pools: { web: [origin.url] }, admin: { host: '127.0.0.1', port: adminPort } });
      const err = await startCorelb(cfg, { readyTimeoutMs: 10_000 }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/corelb exited \(\{"code":1,/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(err?.message).toMatch(/admin server: cannot listen on 127\.0\.0\.1:\d+: address already in use/);
      expect(err?.message).toContain('data plane failed to start: not restarting');
      expect(err?.message.split('"msg":"data plane started"').length).toBe(2);
      expect(err?.message).not.toContain('restarting data plane"');
    } finally {
      blocker.close();
    }
  }, T);

  it('corelb start on an address another process holds exits 1 before serving, with the address', async () => {
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const origin = await echoOrigin('web');
      const err = await startCorelb(corelbConfig({ port, workers: 1, pools: { web: [origin.url] } }), { readyTimeoutMs: 10_000 }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/corelb exited \(\{"code":1,/);
      expect(err?.message).toContain(`corelb: address 127.0.0.1:${port} is already in use`);
      expect(err?.message).not.toContain('data plane started');
    } finally {
      blocker.close();
    }
  }, T);

  it('a second corelb on the address a running corelb holds exits 1; the first keeps all the traffic', async () => {
    const first = await startProxy();
    const origin = await echoOrigin('other');
    const err = await startCorelb(corelbConfig({ port: first.port, workers: 1, pools: { web: [origin.url] } }), { readyTimeoutMs: 10_000 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toContain(`corelb: address 127.0.0.1:${first.port} is already in use`);
    for (let i = 0; i < 20; i++) expect((await request(`${first.url}/after`)).status).toBe(200);
    expect(origin.requests.length, 'the second instance served nothing').toBe(0);
    // and the supervisor's own restart of the data plane still binds the port
    const { from } = killDataPlane(first);
    await first.waitForReadyAfter(from);
    expect((await request(`${first.url}/after-restart`)).status).toBe(200);
  }, T);

  it('a data plane killed after a rejected reload restarts with the last good configuration within 2 s', async () => {
    const lb = await startProxy();
    writeFileSync(lb.configFile, 'pools: [\n');
    const rejectedFrom = lb.logs().length;
    process.kill(lb.pid, 'SIGHUP');
    await lb.waitForLogAfter(rejectedFrom, (l) => l.msg === 'reload rejected');
    const { from } = killDataPlane(lb);
    const ms = await msUntilServing(lb, 15_000);
    expect(ms, 'serving again within 2 s').toBeLessThan(2000);
    const restarting = await lb.waitForLogAfter(from, supervisorLine('restarting data plane with the last good configuration: the file on disk is invalid'));
    expect(String(restarting.problems)).toContain('corelb.yaml:');
    expect((await request(`${lb.url}/after`)).status).toBe(200);
  }, T);

  it('a data plane killed after an accepted reload restarts with the reloaded configuration', async () => {
    const lb = await startProxy();
    const second = await echoOrigin('second');
    writeFileSync(lb.configFile, toYaml(corelbConfig({ port: lb.port, workers: 1, pools: { web: [second.url] } })));
    const reloadFrom = lb.logs().length;
    process.kill(lb.pid, 'SIGHUP');
    await lb.waitForLogAfter(reloadFrom, (l) => l.msg === 'reloaded');
    writeFileSync(lb.configFile, 'not: [valid\n');
    const { from } = killDataPlane(lb);
    await lb.waitForReadyAfter(from);
    const before = second.requests.length;
    expect((await request(`${lb.url}/after`)).status).toBe(200);
    expect(second.requests.length, 'served by the reloaded pool').toBe(before + 1);
  }, T);

  it('SIGHUP to the supervisor is passed on and does not stop the proxy', async () => {
    const lb = await startProxy();
    const dataPlane = lb.dataPlanePid();
    const from = lb.logs().length;
    process.kill(lb.pid, 'SIGHUP');
    await sleep(300);
    expect((await request(`${lb.url}/after-hup`)).status).toBe(200);
    expect(lb.dataPlanePid()).toBe(dataPlane);
    expect(processAlive(dataPlane)).toBe(true);
    expect(lb.logs().slice(from).some(supervisorLine('data plane exited'))).toBe(false);
  }, T);
});
