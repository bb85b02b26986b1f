// Backend faults under load, against a 3-backend pool on 2 workers, each backend a process of its
// own: a SIGKILLed backend costs no request (retries), is taken out by the active health check
// within one interval and comes back through slow start; a hanging backend costs a bounded number
// of 504s before passive checks eject it; a backend answering 500 is ejected and gets no traffic
// while ejected; a POST whose connection is reset is not retried (502) while a GET is.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, startCorelb, type ConfigSpec, type Corelb, type PoolSpec } from '../helpers/corelb.js';
import { describeStates, isBackend, logTime, retryLines, stateLines, waitForState } from '../helpers/fault-logs.js';
import { describeLoad, shareOf, sleep, startLoad, windowOf, type LoadResult } from '../helpers/load.js';
import { startOriginProcess, type OriginProcess } from '../helpers/origin-process.js';

const T = 60_000;
const INTERVAL_MS = 200;
/** A kill this close to a probe may be seen by the probe first (see the SIGKILL test). */
const RACE_MS = 50;

afterEach(stopEverything);
afterAll(stopEverything);

async function threeBackends(): Promise<[OriginProcess, OriginProcess, OriginProcess]> {
  const [a, b, c] = await Promise.all(['b1', 'b2', 'b3'].map((id) => startOriginProcess({ id })));
  return [a!, b!, c!];
}

function start(pool: Omit<PoolSpec, 'backends'>, backends: OriginProcess[], spec: Partial<ConfigSpec> = {}): Promise<Corelb> {
  return startCorelb(corelbConfig({ workers: 2, ...spec, pools: { web: { ...pool, backends: backends.map((b) => b.url) } } }));
}

/** Load until every backend has answered at least `n` requests. */
async function warm(load: Awaited<ReturnType<typeof startLoad>>, ids: string[], n = 30): Promise<void> {
  await load.waitFor((s) => ids.every((id) => (s.byBackend[id] ?? 0) >= n), 15_000, `${n} answers from each of ${ids.join(', ')}`);
}

function print(label: string, r: LoadResult, extra: string[] = []): void {
  console.log([describeLoad(label, r), ...extra.map((e) => `  ${e}`)].join('\n'));
}

describe('a backend that dies under load', () => {
  it('SIGKILL: no failed request, out within one health interval, back through slow start (down -> slow-start -> up)', async () => {
    const SLOW_START_MS = 2000;
    const [b1, b2, b3] = await threeBackends();
    const lb = await start(
      {
        // timeout just under the interval: a probe slowed by a busy machine must not flip b2
        health: { path: '/healthz', interval: `${INTERVAL_MS}ms`, timeout: `${INTERVAL_MS - 10}ms`, rise: 2, fall: 1, expect: '200-399' },
        passive: false,
        slow_start: `${SLOW_START_MS}ms`,
      },
      [b1, b2, b3],
    );
    const load = await startLoad({ url: `${lb.url}/work`, concurrency: 8, maxRequests: 300_000, maxDurationMs: 25_000 });
    await warm(load, ['b1', 'b2', 'b3']);

    const killAt = Date.now();
    await b2.kill();
    const down = await waitForState(lb, b2.url, 'down', { notBefore: killAt - 5, timeoutMs: 5000 });
    const downAfterMs = logTime(down) - killAt;
    await sleep(600);

    const restartAt = Date.now();
    await b2.restart();
    const slow = await waitForState(lb, b2.url, 'slow-start', { from: 'down', notBefore: restartAt, timeoutMs: 5000 });
    const up = await waitForState(lb, b2.url, 'up', { from: 'slow-start', notBefore: logTime(slow), timeoutMs: SLOW_START_MS + 5000 });
    await sleep(1200);
    const r = await load.stop();

    const t = (epoch: number) => epoch - r.startedAt;
    const attemptsOnDead = retryLines(lb).filter((l) => isBackend(l.backend, b2.url));
    const lastAttemptMs = attemptsOnDead.length ? Math.max(...attemptsOnDead.map(logTime)) - killAt : null;
    const early = shareOf(r, 'b2', t(logTime(slow)), t(logTime(slow)) + SLOW_START_MS * 0.4);
    // the window after the ramp ends early if a probe on a starved machine took b2 down again
    const downAgain = stateLines(lb, b2.url).find((l) => l.to === 'down' && logTime(l) > logTime(up));
    const afterEnd = Math.min(t(logTime(up)) + 1100, downAgain === undefined ? Infinity : t(logTime(downAgain)));
    const after = shareOf(r, 'b2', t(logTime(up)) + 100, afterEnd);
    const deadWindow = windowOf(r, t(killAt) + INTERVAL_MS + 200, t(restartAt));
    print('SIGKILL one of 3 backends', r, [
      `down logged ${downAfterMs} ms after the kill; retries logged: ${retryLines(lb).length} (naming b2: ${attemptsOnDead.length}, last ${lastAttemptMs} ms after the kill)`,
      `b2 after restart: slow-start logged ${logTime(slow) - restartAt} ms after the restart, up ${logTime(up) - logTime(slow)} ms after slow-start`,
      `b2 share: first 40% of slow start ${(early * 100).toFixed(1)}%, the second after it ended ${(after * 100).toFixed(1)}%`,
      `b2 states: ${describeStates(lb, b2.url, killAt)}`,
    ]);

    expect(r.failed, 'retries must absorb the dead backend').toBe(0);
    // active check: fall 1, connect refused at once -> down within one interval (+ slack for a busy machine)
    expect(downAfterMs).toBeLessThanOrEqual(INTERVAL_MS + 100 + 300);
    // requests did try the dead backend (and were retried), but none once it was down: a dead
    // backend cannot answer, so its attempts show in the retry lines, not in the load's answers.
    // A probe that fires within a few ms of the kill can take it out before any request picks it
    // (seen once on a busy CI machine: down 16 ms after the kill, no attempt): only a backend that
    // stayed in the pool longer than that must show attempts
    if (downAfterMs > RACE_MS) expect(attemptsOnDead.length, `down ${downAfterMs} ms after the kill`).toBeGreaterThanOrEqual(1);
    if (lastAttemptMs !== null) expect(lastAttemptMs).toBeLessThanOrEqual(logTime(down) - killAt + 100);
    expect(deadWindow.total, 'the other backends kept serving while b2 was down').toBeGreaterThan(50);
    // back through slow start: clearly less than its share at the start of the ramp than after it
    expect(after).toBeGreaterThan(0.2);
    expect(early).toBeLessThan(after * 0.75);
    expect(logTime(up) - logTime(slow)).toBeGreaterThanOrEqual(SLOW_START_MS * 0.9);
    const seq = stateLines(lb, b2.url).map((l) => `${String(l.from)}->${String(l.to)}`);
    const iDown = seq.indexOf('up->down'); // the kill's; a later flip is the busy machine's
    expect(iDown, seq.join(', ')).toBeGreaterThanOrEqual(0);
    expect(seq.slice(iDown, iDown + 3), seq.join(', ')).toEqual(['up->down', 'down->slow-start', 'slow-start->up']);
  }, T);
});

describe('a backend that hangs', () => {
  it('requests already sent to it get 504 after timeouts.response; passive checks eject it and later requests all succeed', async () => {
    const CONCURRENCY = 6;
    const [b1, b2, b3] = await threeBackends();
    const lb = await start({ passive: { failures: 3, window: '5s', eject: '20s' } }, [b1, b2, b3], {
      timeouts: { connect: '2s', response: '500ms', idle: '60s' },
    });
    const load = await startLoad({ url: `${lb.url}/work`, concurrency: CONCURRENCY, maxRequests: 300_000, maxDurationMs: 20_000 });
    await warm(load, ['b1', 'b2', 'b3']);

    const hangAt = Date.now();
    await b2.setMode('hang');
    const down = await waitForState(lb, b2.url, 'down', { notBefore: hangAt, timeoutMs: 8000 });
    const ejectedAt = logTime(down);
    await sleep(1500);
    const r = await load.stop();

    const t = (epoch: number) => epoch - r.startedAt;
    const afterEject = r.failures.filter((f) => f.startT > t(ejectedAt) + 200);
    const durations = r.failures.map((f) => f.durationMs);
    print('backend hangs (response timeout 500 ms)', r, [
      `ejected ${ejectedAt - hangAt} ms after the hang began (reason: ${String(down.reason)}); 504 took ${Math.min(...durations)}..${Math.max(...durations)} ms`,
      `failures started after the ejection: ${afterEject.length}; b2 states: ${describeStates(lb, b2.url, hangAt)}`,
    ]);

    expect(String(down.reason ?? ''), JSON.stringify(down)).toMatch(/passive|fail/i);
    expect(r.failed).toBeGreaterThanOrEqual(1);
    // at most two hung requests per load loop: one sent before the first 504s, one sent in the
    // moment before the ejection was published; without ejection a loop fails every 500 ms
    expect(r.failed, 'failures must stop at the ejection').toBeLessThanOrEqual(2 * CONCURRENCY + 2);
    for (const f of r.failures) {
      expect(f.kind === 'status' && f.status === 504, JSON.stringify(f)).toBe(true);
      expect(f.durationMs).toBeGreaterThanOrEqual(430); // deadlines run on a 50 ms coarse clock
      expect(f.durationMs).toBeLessThanOrEqual(500 + 1500);
      expect(f.startT).toBeGreaterThanOrEqual(t(hangAt) - 5);
    }
    expect(afterEject).toEqual([]);
    // requests sent before the ejection time out by ejection + 500 ms; nothing fails after that
    const tail = windowOf(r, t(ejectedAt) + 500 + 300, Number.MAX_SAFE_INTEGER);
    expect(tail.total).toBeGreaterThan(50);
    expect(tail.failed).toBe(0);
  }, T);
});

describe('a backend that answers 500', () => {
  it('is ejected by passive checks and gets no traffic while ejected', async () => {
    const [b1, b2, b3] = await threeBackends();
    const lb = await start({ passive: { failures: 3, window: '5s', eject: '20s' } }, [b1, b2, b3]);
    const load = await startLoad({ url: `${lb.url}/work`, concurrency: 6, maxRequests: 300_000, maxDurationMs: 20_000 });
    await warm(load, ['b1', 'b2', 'b3']);

    const errorAt = Date.now();
    await b3.setMode('error500');
    const down = await waitForState(lb, b3.url, 'down', { notBefore: errorAt, timeoutMs: 8000 });
    const ejectedAt = logTime(down);
    await sleep(1500);
    const r = await load.stop();

    const t = (epoch: number) => epoch - r.startedAt;
    const tail = windowOf(r, t(ejectedAt) + 200, Number.MAX_SAFE_INTEGER);
    print('backend answers 500', r, [
      `ejected ${ejectedAt - errorAt} ms after the 500s began (reason: ${String(down.reason)}); after it: ${tail.failed} failed / ${tail.total}, b3 answered ${tail.byBackend.b3 ?? 0}`,
    ]);

    expect(String(down.reason ?? ''), JSON.stringify(down)).toMatch(/passive|fail/i);
    expect(r.statuses['500'] ?? 0).toBeGreaterThanOrEqual(3);
    for (const f of r.failures) expect(f.kind === 'status' && f.status === 500 && f.backend === 'b3', JSON.stringify(f)).toBe(true);
    expect(tail.total).toBeGreaterThan(50);
    expect(tail.byBackend.b3 ?? 0, 'answers from b3 while ejected').toBe(0);
    expect(tail.failed).toBe(0);
  }, T);
});

describe('a passively ejected backend that comes back', () => {
  it('takes traffic again once active checks see it healthy `rise` times, long before `eject` ends', async () => {
    const [b1, b2, b3] = await threeBackends();
    const health = { path: '/healthz', interval: `${INTERVAL_MS}ms`, timeout: `${INTERVAL_MS - 10}ms`, rise: 2, fall: 50, expect: '200-399' };
    const lb = await start({ health, passive: { failures: 3, window: '5s', eject: '30s' }, retries: 2 }, [b1, b2, b3]);
    const load = await startLoad({ url: `${lb.url}/work`, concurrency: 6, maxRequests: 300_000, maxDurationMs: 30_000 });
    await warm(load, ['b1', 'b2', 'b3']);

    const killedAt = Date.now();
    await b3.kill();
    const down = await waitForState(lb, b3.url, 'down', { notBefore: killedAt, timeoutMs: 8000 });
    expect(String(down.reason ?? ''), JSON.stringify(down)).toMatch(/passive check/);
    const restartedAt = Date.now();
    await b3.restart();
    const up = await waitForState(lb, b3.url, 'up', { notBefore: restartedAt, timeoutMs: 8000 });
    const backAfter = logTime(up) - restartedAt;
    expect(String(up.reason ?? ''), JSON.stringify(up)).toContain('since the passive ejection');
    const before = (await load.snapshot()).byBackend.b3 ?? 0;
    await load.waitFor((s) => (s.byBackend.b3 ?? 0) >= before + 20, 8000, 'b3 answering again');
    const r = await load.stop();
    print('ejected backend restarted', r, [`ejected: ${String(down.reason)}; up ${backAfter} ms after the restart (eject is 30 s)`]);
    expect(backAfter).toBeLessThan(5000);
  }, T);
});

describe('retries after a reset', () => {
  it('a POST whose connection is reset after the request was sent is not retried (502); a GET is retried and succeeds', async () => {
    const N = 30;
    const [b1, b2, b3] = await threeBackends();
    await b1.setMode('reset');
    const lb = await start({ passive: false, retries: 2 }, [b1, b2, b3]);
    const all = [b1, b2, b3];
    const seen = async (m: string) => (await Promise.all(all.map((b) => b.stats()))).map((s) => s.byMethod[m] ?? 0);

    const post = await (await startLoad({ url: `${lb.url}/submit`, method: 'POST', body: 'payload', concurrency: 3, maxRequests: N, maxDurationMs: 15_000 })).done;
    const posts = await seen('POST');
    const get = await (await startLoad({ url: `${lb.url}/read`, concurrency: 3, maxRequests: N, maxDurationMs: 15_000 })).done;
    const gets = await seen('GET');
    const retries = retryLines(lb);
    print('POST to a resetting backend', post, [`POSTs seen by b1,b2,b3: ${posts.join(',')}`]);
    print('GET to a resetting backend', get, [`GETs seen by b1,b2,b3: ${gets.join(',')}; retries logged: ${retries.length}`]);

    // POST: every one b1 reset is a 502, none was sent anywhere a second time
    expect(post.total).toBe(N);
    expect(posts[0]!).toBeGreaterThanOrEqual(1);
    expect(post.statuses['502'] ?? 0).toBe(posts[0]);
    expect(post.ok).toBe(N - posts[0]!);
    expect(posts.reduce((a, b) => a + b, 0)).toBe(N);
    // GET: every one b1 reset was retried once elsewhere and succeeded
    expect(get.total).toBe(N);
    expect(get.failed, describeLoad('GET', get)).toBe(0);
    expect(gets[0]!).toBeGreaterThanOrEqual(1);
    expect(gets.reduce((a, b) => a + b, 0)).toBe(N + gets[0]!);
    expect(retries.length).toBe(gets[0]);
    for (const l of retries) {
      expect(l.level, JSON.stringify(l)).toBe(40);
      expect(typeof l.reqId).toBe('string');
      expect(typeof l.code).toBe('string');
      expect(l.attempt).toBeGreaterThanOrEqual(1);
    }
  }, T);

  it('retry_budget: 0% stops retries after resets (the reset GETs get 502), while connect failures are still retried', async () => {
    const N = 30;
    const [b1, b2, b3] = await threeBackends();
    await b1.setMode('reset');
    const lb = await start({ passive: false, retries: 2, retry_budget: '0%' }, [b1, b2, b3]);
    const reset = await (await startLoad({ url: `${lb.url}/read`, concurrency: 3, maxRequests: N, maxDurationMs: 15_000 })).done;
    const resetSeen = (await b1.stats()).byMethod.GET ?? 0;
    await b1.kill(); // now b1 refuses connections: nothing is sent, so no budget is needed
    const refused = await (await startLoad({ url: `${lb.url}/read`, concurrency: 3, maxRequests: N, maxDurationMs: 15_000 })).done;
    print('GET to a resetting backend, retry_budget 0%', reset, [`GETs reset by b1: ${resetSeen}`]);
    print('GET with a refusing backend, retry_budget 0%', refused);
    expect(resetSeen).toBeGreaterThanOrEqual(1);
    expect(reset.statuses['502'] ?? 0).toBe(resetSeen);
    expect(refused.failed, describeLoad('refused', refused)).toBe(0);
    expect(refused.total).toBe(N);
  }, T);
});
