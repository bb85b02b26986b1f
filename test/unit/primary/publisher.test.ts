// The publisher against a real shared buffer, in real time: passive ejection from the workers'
// failure counters, the pool's last backend kept, slow start's effective weights, reloads that
// keep verdicts by pool and URL, drain, and active probes against a real HTTP server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatProblem, parseConfig, type Config } from '../../../src/config/index.js';
import { Publisher } from '../../../src/primary/publisher.js';
import { BackendState, FailureKind, SharedState, WEIGHT_SCALE } from '../../../src/shared/layout.js';
import { sleep } from '../../helpers/time.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

function config(text: string): Config {
  const r = parseConfig(text, 'test.yaml', { availableParallelism: 1 });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

/** The buffer the primary lays out for `c` (as data-plane.ts's layoutFor does). */
function layout(c: Config, generation = 1): SharedState {
  return SharedState.create({ pools: c.pools.map((p) => ({ weights: p.backends.map((b) => b.weight) })) }, generation);
}

interface Change {
  level: number;
  pool: string;
  backend: string;
  from: string;
  to: string;
  reason: string;
}

/** A pino logger writing into an array; `changes()` are its "backend state" lines. */
function collectingLogger() {
  const out: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void out.push(JSON.parse(line) as Record<string, unknown>) });
  const changes = (): Change[] =>
    out
      .filter((l) => l.msg === 'backend state')
      .map((l) => ({ level: l.level, pool: l.pool, backend: l.backend, from: l.from, to: l.to, reason: l.reason }) as Change);
  return { log, changes };
}

const publishers: Publisher[] = [];
afterEach(() => {
  for (const p of publishers.splice(0)) p.stop();
});

function publisher(c: Config, state: SharedState) {
  const { log, changes } = collectingLogger();
  const pub = new Publisher(c, state, log);
  publishers.push(pub);
  return { pub, changes };
}


/** Resolves once `cond()` holds, polling every 5 ms; rejects after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Waits for the publisher's next tick: it rewrites every effective weight that differs from its
 * verdict, so a planted value that disappears shows that a tick has judged backend `i`.
 */
async function nextTick(state: SharedState, i: number): Promise<void> {
  state.setEffectiveWeight(i, -7);
  await until(() => state.effectiveWeight(i) !== -7, 1000, 'a publisher tick');
}

const Up = BackendState.Up;
const Down = BackendState.Down;
const Draining = BackendState.Draining;
const SlowStart = BackendState.SlowStart;
const A = 'http://127.0.0.1:3001';
const B = 'http://127.0.0.1:3002';
const C = 'http://127.0.0.1:3003';
const D = 'http://127.0.0.1:3004';

describe('Publisher: passive checks', () => {
  it('ejects a failing backend: writes Down and logs the change once, with the reason', async () => {
    const c = config(lines('pools:', '  web:', `    backends: [${A}, ${B}]`, '    passive: { failures: 2, window: 1s, eject: 5s }'));
    const state = layout(c);
    const { pub, changes } = publisher(c, state);
    pub.start();
    await nextTick(state, 0); // the counter's baseline is sampled
    state.countFailure(0, FailureKind.Connect);
    state.countFailure(0, FailureKind.Status5xx);
    await until(() => state.state(0) === Down, 1000, 'the ejection');
    for (let k = 0; k < 3; k++) await nextTick(state, 0);
    expect(state.state(0)).toBe(Down);
    expect(state.state(1)).toBe(Up);
    expect(changes()).toEqual([
      { level: 40, pool: 'web', backend: A, from: 'up', to: 'down', reason: 'passive check: 2 failed request(s) within 1000ms; ejected for 5000ms' },
    ]);
  });

  it('one failure below the threshold ejects nothing', async () => {
    const c = config(lines('pools:', '  web:', `    backends: [${A}, ${B}]`, '    passive: { failures: 2, window: 1s, eject: 5s }'));
    const state = layout(c);
    const { pub, changes } = publisher(c, state);
    pub.start();
    await nextTick(state, 0);
    state.countFailure(0, FailureKind.Reset);
    for (let k = 0; k < 3; k++) await nextTick(state, 0);
    expect([state.state(0), state.state(1)]).toEqual([Up, Up]);
    expect(changes()).toEqual([]);
  });

  it('never ejects the last available backend of a pool (other pools do not count)', async () => {
    const c = config(
      lines(
        'pools:',
        '  web:',
        `    backends: [${A}, ${B}]`,
        '    passive: { failures: 2, window: 1s, eject: 5s }',
        '  api:',
        `    backends: [${C}]`,
        '    passive: { failures: 2, window: 1s, eject: 5s }',
        'routes: [{ pool: web }, { path_prefix: /api, pool: api }]',
      ),
    );
    const state = layout(c);
    const { pub, changes } = publisher(c, state);
    pub.start();
    await nextTick(state, 2);
    for (let k = 0; k < 5; k++) for (const i of [0, 1, 2]) state.countFailure(i, FailureKind.ResponseTimeout);
    await until(() => state.state(0) === Down || state.state(1) === Down, 1000, 'an ejection');
    for (let k = 0; k < 3; k++) {
      for (const i of [0, 1, 2]) state.countFailure(i, FailureKind.InvalidResponse); // still failing
      await nextTick(state, 2);
    }
    expect([state.state(0), state.state(1), state.state(2)]).toEqual([Down, Up, Up]);
    expect(changes()).toEqual([expect.objectContaining({ pool: 'web', backend: A, from: 'up', to: 'down' })]);
  });

  it('returns through slow start: effective weights below weight * WEIGHT_SCALE that grow to full', async () => {
    const c = config(
      lines(
        'pools:',
        '  web:',
        '    backends:',
        `      - { url: ${A}, weight: 3 }`,
        `      - ${B}`,
        '    passive: { failures: 1, window: 1s, eject: 200ms }',
        '    slow_start: 600ms',
      ),
    );
    const state = layout(c);
    const { pub, changes } = publisher(c, state);
    const full = 3 * WEIGHT_SCALE;
    expect(state.effectiveWeight(0)).toBe(full);
    pub.start();
    await nextTick(state, 0);
    state.countFailure(0, FailureKind.ConnectTimeout);
    await until(() => state.state(0) === Down, 1000, 'the ejection');
    await until(() => state.state(0) !== Down, 1000, 'the end of the ejection');
    const ramp: number[] = [];
    while (state.state(0) === SlowStart) {
      ramp.push(state.effectiveWeight(0));
      expect(ramp.length).toBeLessThan(200); // 200 * 10ms: far past the 600ms ramp
      await sleep(10);
    }
    expect(state.state(0)).toBe(Up);
    expect(state.effectiveWeight(0)).toBe(full);
    expect(state.effectiveWeight(1)).toBe(WEIGHT_SCALE);
    expect(ramp[0]).toBeGreaterThanOrEqual(0.1 * full); // the ramp's floor
    expect(ramp[0]).toBeLessThan(0.5 * full);
    expect(ramp.every((w, k) => w < full && (k === 0 || w >= ramp[k - 1]!))).toBe(true);
    expect(new Set(ramp).size).toBeGreaterThanOrEqual(3); // it did grow, tick by tick
    expect(changes().map((ch) => [ch.from, ch.to, ch.reason])).toEqual([
      ['up', 'down', 'passive check: 1 failed request(s) within 1000ms; ejected for 200ms'],
      ['down', 'slow-start', 'ejection time over'],
      ['slow-start', 'up', 'slow start over'],
    ]);
  });
});

describe('Publisher: reload', () => {
  const threeBackends = (...urls: string[]) =>
    config(lines('pools:', '  web:', `    backends: [${urls.join(', ')}]`, '    passive: { failures: 1, window: 1s, eject: 10s }'));

  it('swap() keeps a down backend down by pool and URL, and drops the records of removed backends', async () => {
    const first = threeBackends(A, B, C);
    const state = layout(first);
    const { pub, changes } = publisher(first, state);
    pub.start();
    await nextTick(state, 0);
    state.countFailure(0, FailureKind.Connect);
    state.countFailure(1, FailureKind.Connect);
    await until(() => state.state(0) === Down && state.state(1) === Down, 1000, 'two ejections');
    expect(state.state(2)).toBe(Up); // the last one is kept

    // B moves to index 0, A and C go away, D is new
    const second = threeBackends(B, D);
    const state2 = layout(second, 2);
    pub.swap(second, state2);
    expect([state2.state(0), state2.state(1)]).toEqual([Down, Up]);
    await nextTick(state2, 1);
    await nextTick(state2, 1);
    expect([state2.state(0), state2.state(1)]).toEqual([Down, Up]);

    // back to A, B, C: A starts afresh (its ejection was forgotten with it), B is still ejected
    const state3 = layout(first, 3);
    pub.swap(first, state3);
    expect([state3.state(0), state3.state(1), state3.state(2)]).toEqual([Up, Down, Up]);
    await nextTick(state3, 2);
    expect([state3.state(0), state3.state(1), state3.state(2)]).toEqual([Up, Down, Up]);
    expect(changes().map((ch) => `${ch.backend} ${ch.from}->${ch.to}`)).toEqual([`${A} up->down`, `${B} up->down`]);
  });

  it('the new buffer\'s failure counters starting at 0 are not read as failures', () => {
    const c = config(lines('pools:', '  web:', `    backends: [${A}, ${B}, ${C}]`, '    passive: { failures: 3, window: 300ms, eject: 10s }'));
    const state = layout(c);
    const { pub } = publisher(c, state);
    // the test drives the clock: no timer runs (start() is not called)
    const t0 = 1_000_000;
    pub.tick(t0);
    state.countFailure(0, FailureKind.Status5xx);
    state.countFailure(0, FailureKind.Status5xx);
    state.countFailure(1, FailureKind.Reset);
    pub.tick(t0 + 400); // every sample within the window now reads 2 and 1 failures
    const state2 = layout(c, 2);
    pub.swap(c, state2);
    for (let k = 1; k <= 3; k++) pub.tick(t0 + 400 + k * 100);
    expect([state2.state(0), state2.state(1), state2.state(2)]).toEqual([Up, Up, Up]);
  });
});

describe('Publisher: drain', () => {
  it('setDraining drains a URL in every pool that has it, at once, and enables it again', () => {
    const c = config(
      lines('pools:', `  web: { backends: [${A}, ${B}] }`, `  api: { backends: [${A}] }`, 'routes: [{ pool: web }, { path_prefix: /api, pool: api }]'),
    );
    const state = layout(c);
    const { pub, changes } = publisher(c, state);
    expect(pub.setDraining(A, true)).toBe(2);
    expect([state.state(0), state.state(1), state.state(2)]).toEqual([Draining, Up, Draining]);
    expect(pub.setDraining(A, false)).toBe(2);
    expect([state.state(0), state.state(1), state.state(2)]).toEqual([Up, Up, Up]);
    expect(pub.setDraining('http://127.0.0.1:9', true)).toBe(0);
    expect(changes()).toEqual([
      { level: 30, pool: 'web', backend: A, from: 'up', to: 'draining', reason: 'drained by the operator' },
      { level: 30, pool: 'api', backend: A, from: 'up', to: 'draining', reason: 'drained by the operator' },
      { level: 30, pool: 'web', backend: A, from: 'draining', to: 'up', reason: 'enabled by the operator' },
      { level: 30, pool: 'api', backend: A, from: 'draining', to: 'up', reason: 'enabled by the operator' },
    ]);
  });

  it('setDraining with a pool drains the URL in that pool only', () => {
    const c = config(
      lines('pools:', `  web: { backends: [${A}, ${B}] }`, `  api: { backends: [${A}] }`, 'routes: [{ pool: web }, { path_prefix: /api, pool: api }]'),
    );
    const state = layout(c);
    const { pub } = publisher(c, state);
    expect(pub.setDraining(A, true, 'api')).toBe(1);
    expect([state.state(0), state.state(1), state.state(2)]).toEqual([Up, Up, Draining]);
    expect(pub.setDraining(B, true, 'api')).toBe(0);
    expect(pub.setDraining(A, false, 'api')).toBe(1);
    expect([state.state(0), state.state(1), state.state(2)]).toEqual([Up, Up, Up]);
  });

  it('a draining backend counts as unavailable: its pool\'s other backend is then never ejected', async () => {
    const c = config(lines('pools:', '  web:', `    backends: [${A}, ${B}]`, '    passive: { failures: 1, window: 1s, eject: 5s }'));
    const state = layout(c);
    const { pub } = publisher(c, state);
    pub.start();
    pub.setDraining(A, true);
    await nextTick(state, 1);
    state.countFailure(1, FailureKind.Connect);
    state.countFailure(1, FailureKind.Connect);
    for (let k = 0; k < 3; k++) await nextTick(state, 1);
    expect([state.state(0), state.state(1)]).toEqual([Draining, Up]);
  });
});

describe('Publisher: active checks', () => {
  const servers: http.Server[] = [];
  afterAll(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  async function server(status: () => number): Promise<{ url: string; probes: () => number }> {
    let probes = 0;
    const s = http.createServer((_req, res) => {
      probes++;
      res.writeHead(status()).end();
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, probes: () => probes };
  }

  it('publishes probe verdicts at once: down on a failing check, up again when it passes', async () => {
    let status = 503;
    const s = await server(() => status);
    const c = config(
      lines('pools:', '  web:', `    backends: [${s.url}, ${A}]`, '    health: { path: /h, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }', '    passive: false'),
    );
    const state = layout(c);
    const { pub, changes } = publisher(c, state);
    pub.start();
    await until(() => state.state(0) === Down, 1500, 'a failed probe');
    status = 200;
    await until(() => state.state(0) === Up, 1500, 'a passed probe');
    const mine = changes().filter((ch) => ch.backend === s.url);
    expect(mine.map((ch) => [ch.level, ch.from, ch.to, ch.reason])).toEqual([
      [40, 'up', 'down', 'active check failed 1 time(s) in a row: status 503, expected 200-399'],
      [30, 'down', 'up', 'active check passed 1 time(s) in a row'],
    ]);
  });

  it('a reload keeps one probe loop per backend, and stop() ends them', async () => {
    const s = await server(() => 200);
    const c = config(lines('pools:', '  web:', `    backends: [${s.url}]`, '    health: { interval: 200ms, timeout: 200ms }'));
    const { pub } = publisher(c, layout(c));
    pub.start();
    pub.swap(c, layout(c, 2));
    pub.swap(c, layout(c, 3));
    const before = s.probes();
    await sleep(1000);
    const during = s.probes() - before;
    // one loop: at most 1000 / 200 + 1 probes; three loops would make about three times as many
    expect(during).toBeGreaterThanOrEqual(2);
    expect(during).toBeLessThanOrEqual(6);
    pub.stop();
    await sleep(50); // a probe already sent may still arrive
    const stopped = s.probes();
    await sleep(500);
    expect(s.probes()).toBe(stopped);
  });
});
