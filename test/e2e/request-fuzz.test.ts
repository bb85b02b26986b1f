// A seeded, bounded fuzz of request framing through the real proxy: 20,000 mutations of valid
// request heads around their framing fields and line ends, each on its own connection, half of
// them with a complete second request in the same write. Invariants, checked on what a recording
// backend received: the second request of a write never arrives (nothing smuggled), no backend
// request is more than the client sent, and every forwarded request has exactly one canonical
// framing (one `content-length` of digits matching its body, or `transfer-encoding: chunked`,
// never both).
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corelbConfig, startCorelb, type Corelb } from '../helpers/corelb.js';
import { startRawHttpOrigin } from '../helpers/origins.js';
import { connect, headerValues } from '../helpers/raw.js';
import { sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 240_000;
const CASES = 20_000;
const CONCURRENCY = 64;
/** A connection that neither answers nor closes within this is left (the front server waits ~10 s). */
const WAIT_MS = 300;
const SEED = 0x5eed1234;

/** xorshift32: the same cases on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

const PIECES = ['', ' ', '\t', '\x00', '\x0b', '\x0c', '\xa0', '\xff', '\r', '\n', ',', ', ', '+', '-', '0', '3', '9', 'a', 'x', ';', '"', 'chunked', 'gzip', 'identity', 'CHUNKED', '5', '10'];
const FIELD_NAMES = ['Content-Length', 'content-length', 'CONTENT-LENGTH', 'Transfer-Encoding', 'transfer-encoding', 'Content-Length ', 'Content_Length', 'Transfer-Encoding\t', 'Connection', 'Host'];
const EOLS = ['\r\n', '\n', '\r', '\r\r\n', '\n\r', '\r\n '];

interface Case {
  id: number;
  first: string;
  pipelined: boolean;
}

function makeCase(id: number, r: () => number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const lines: [string, string][] = [['Host', 'x']];
  let body = '';
  switch (Math.floor(r() * 3)) {
    case 0:
      break; // GET, no body
    case 1:
      body = 'hello';
      lines.push(['Content-Length', '5']);
      break;
    default:
      body = '5\r\nhello\r\n0\r\n\r\n';
      lines.push(['Transfer-Encoding', 'chunked']);
  }
  const method = body === '' ? pick(['GET', 'HEAD', 'DELETE']) : pick(['POST', 'PUT']);
  const mutations = 1 + Math.floor(r() * 3);
  let eol = '\r\n';
  for (let m = 0; m < mutations; m++) {
    const framing = lines.findIndex(([k]) => /length|encoding/i.test(k));
    switch (Math.floor(r() * 7)) {
      case 0: // mutate a framing value: insert a piece before, after, or inside
      case 1: {
        const i = framing >= 0 ? framing : lines.length - 1;
        const [k, v] = lines[i]!;
        const at = Math.floor(r() * (v.length + 1));
        lines[i] = [k, v.slice(0, at) + pick(PIECES) + v.slice(at)];
        break;
      }
      case 2: // duplicate a framing line, same or another value
        if (framing >= 0) lines.push([lines[framing]![0], r() < 0.5 ? lines[framing]![1] : pick(PIECES)]);
        break;
      case 3: // add the other framing
        lines.push(r() < 0.5 ? ['Content-Length', pick(['0', '5', '3', '16'])] : ['Transfer-Encoding', pick(['chunked', 'gzip', 'chunked, gzip'])]);
        break;
      case 4: // rename a field
        if (framing >= 0) lines[framing] = [pick(FIELD_NAMES), lines[framing]![1]];
        break;
      case 5: // line ends
        eol = pick(EOLS);
        break;
      default: // body longer or shorter than its framing says
        body = r() < 0.5 ? body + 'XY' : body.slice(0, Math.max(0, body.length - 2));
    }
  }
  const head = `${method} /f/${id} HTTP/1.1${eol}` + lines.map(([k, v]) => `${k}: ${v}${eol}`).join('') + eol;
  return { id, first: head + body, pipelined: r() < 0.5 };
}

let lb: Corelb;
let backend: Awaited<ReturnType<typeof startRawHttpOrigin>>;

beforeAll(async () => {
  backend = await startRawHttpOrigin(({ socket }) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  lb = await startCorelb(corelbConfig({ workers: 1, timeouts: { connect: '2s', response: '5s', idle: '60s' }, pools: { web: [backend.url] } }));
}, T);

afterAll(stopEverything);

/** Sends one case on a new connection; resolves at the first answer byte or the close, or after WAIT_MS. */
async function send(c: Case): Promise<void> {
  let socket: net.Socket;
  try {
    socket = await connect(lb.port);
  } catch {
    return;
  }
  socket.on('error', () => undefined);
  const wire = c.first + (c.pipelined ? `GET /s/${c.id} HTTP/1.1\r\nHost: x\r\n\r\n` : '');
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, WAIT_MS);
    // an answer has begun (the request was judged) or the proxy closed: this case is over
    socket.on('data', done);
    socket.on('close', done);
    socket.write(Buffer.from(wire, 'latin1'));
  });
  socket.destroy();
}

describe('request framing fuzz', () => {
  it(`${CASES} seeded mutations: nothing smuggled, one canonical framing per forwarded request`, async () => {
    const r = rng(SEED);
    const cases = Array.from({ length: CASES }, (_, i) => makeCase(i, r));
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < cases.length) await send(cases[next++]!);
      }),
    );
    await sleep(500); // requests still on their way to the backend

    const byId = new Map(cases.map((c) => [c.id, c]));
    const smuggled = backend.requests.filter((x) => x.req.target.startsWith('/s/'));
    const problems: string[] = [];
    const perCase = new Map<number, number>();
    for (const x of backend.requests) {
      const m = /^\/f\/(\d+)$/.exec(x.req.target);
      if (m === null) {
        if (!x.req.target.startsWith('/s/')) problems.push(`unexpected target ${x.req.target}`);
        continue;
      }
      const id = Number(m[1]);
      perCase.set(id, (perCase.get(id) ?? 0) + 1);
      if (!x.req.complete) continue; // cut by the proxy when its client went away: nothing to judge
      const cl = headerValues(x.req, 'content-length');
      const te = headerValues(x.req, 'transfer-encoding');
      const where = `case ${id} ${JSON.stringify(byId.get(id)?.first)}`;
      if (cl.length > 0 && te.length > 0) problems.push(`both framings: ${where}`);
      if (cl.length > 1 || te.length > 1) problems.push(`framing repeated: ${where}`);
      if (te.length === 1 && te[0] !== 'chunked') problems.push(`transfer-encoding ${te[0]}: ${where}`);
      if (cl.length === 1 && (!/^\d+$/.test(cl[0]!) || Number(cl[0]) !== x.req.body.length)) problems.push(`content-length ${cl[0]} for ${x.req.body.length} bytes: ${where}`);
    }
    for (const [id, n] of perCase) if (n > 1) problems.push(`case ${id} forwarded ${n} times`);
    const forwarded = [...perCase.keys()].length;
    console.log(
      `request fuzz: ${CASES} cases (seed ${SEED.toString(16)}) in ${Date.now() - started} ms; ${forwarded} forwarded, ` +
        `${backend.requests.filter((x) => x.req.complete).length} complete at the backend; smuggled ${smuggled.length}; problems ${problems.length}`,
    );
    expect(smuggled.map((x) => `${x.req.target} after ${JSON.stringify(byId.get(Number(x.req.target.slice(3)))?.first)}`)).toEqual([]);
    expect(problems.slice(0, 20)).toEqual([]);
    expect(forwarded, 'the fuzz reached the backend at all').toBeGreaterThan(CASES / 10);
    expect(lb.proc.exitCode, 'the proxy is still running').toBeNull();
  }, T);
});
