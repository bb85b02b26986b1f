// Balancer pick micro-benchmark: ns per pick() + releaseInflight() for every algorithm the
// registry can build, on pools of 3 and 16 backends, with one thread and with two worker_threads
// picking from the same SharedArrayBuffer at once (the shared cursor and in-flight counters are
// then contended, as between corelb's workers).
//
//   npm run bench:pick                  (= npm run build --silent && node native-free-bench/pick.js)
//   node native-free-bench/pick.js --picks 500000 --only p2c,ewma
//
// Flags:
//   --picks N     timed picks per row and per thread (default 2,000,000; a 10% warm-up comes first)
//   --only a,b    only these algorithms
//   --dist DIR    the corelb build to load (default dist/)
//   --help
//
// Prints a Markdown table, writes results/pick.md and results/pick.json. A benchmark prints
// numbers; nothing here asserts a speed. Compare rows of one run: the machine is shared.

import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BENCH_DIR, REPO_ROOT, eachFlag, fmt } from './lib.js';

/** Pool shapes measured: weights per backend. */
const POOLS = {
  3: [5, 3, 2],
  16: Array.from({ length: 16 }, (_, k) => (k % 4) + 1),
};

function parseArgs(argv) {
  const o = { picks: 2_000_000, only: null, dist: path.join(REPO_ROOT, 'dist') };
  eachFlag(argv, (a, next) => {
    if (a === '--picks') {
      o.picks = Math.floor(Number(next()));
      if (!Number.isFinite(o.picks) || o.picks <= 0) throw new Error('--picks: not a positive number');
    } else if (a === '--only') o.only = next().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--dist') o.dist = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node native-free-bench/pick.js [--picks N] [--only a,b] [--dist DIR (default dist/)]\n');
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  });
  return o;
}

/** The corelb modules this benchmark drives, from a build directory. */
async function load(dist) {
  const imp = (p) => import(pathToFileURL(path.join(dist, p)).href);
  const [registry, layout, config, hash] = await Promise.all([
    imp('balancer/registry.js'),
    imp('shared/layout.js'),
    imp('config/index.js'),
    imp('balancer/hash.js'),
  ]);
  // config/index.js exports ALGORITHMS in every build, so an older --dist loads too
  return { ...registry, ...layout, ...config, ...hash };
}

/** The shared buffer of one pool, laid out as the primary does for `algorithm` (a ring for consistent-hash). */
function layoutState(m, algorithm, weights) {
  const backends = weights.map((weight, k) => ({ url: `http://127.0.0.1:${20000 + k}`, weight }));
  return m.SharedState.create({ pools: [m.poolLayout(algorithm, backends)] });
}

/**
 * Request-key hashes the picks of an algorithm that needs a key cycle through (others get none).
 * A build from before AlgorithmSpec (no algorithmSpec export) had one such algorithm.
 */
function keyHashes(m, algorithm, pool) {
  const keyed = m.algorithmSpec ? m.algorithmSpec(algorithm).needs(pool).key : algorithm === 'consistent-hash';
  if (!keyed) return null;
  return Array.from({ length: 1024 }, (_, k) => m.hashString(`/users/${k}/profile`));
}

/** A validated pool config, as the worker gets it (some algorithms read options from it). */
function poolConfig(m, algorithm, weights) {
  const backends = weights.map((w, k) => `      - { url: "http://127.0.0.1:${20000 + k}", weight: ${w} }`).join('\n');
  const r = m.parseConfig(`workers: 1\npools:\n  p:\n    algorithm: ${algorithm}\n    backends:\n${backends}\n`, 'pick-bench.yaml');
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config.pools[0];
}

/** Build a balancer over `state` (pool 0), with latencies observed so ewma takes its cost path. */
function build(m, state, algorithm, weights, seed) {
  const pool = poolConfig(m, algorithm, weights);
  const balancer = m.balancers[algorithm](state, 0, { pool, seed });
  for (let k = 0; k < weights.length; k++) balancer.observe(k, 1 + k / 10);
  balancer.keyHashes = keyHashes(m, algorithm, pool);
  return balancer;
}

/** `count` picks, each released at once (a request that ends before the next starts). */
function picks(state, balancer, count) {
  const ctx = { avoid: -1, maxInflight: 0, hash: -1 };
  const hashes = balancer.keyHashes;
  let none = 0;
  for (let k = 0; k < count; k++) {
    if (hashes !== null) ctx.hash = hashes[k & 1023];
    const i = balancer.pick(ctx);
    if (i < 0) none++;
    else state.releaseInflight(i);
  }
  if (none > 0) throw new Error(`${none} picks returned none`);
}

/** Warm-up count before timing, so the timed loop runs optimised code. */
const warmup = (n) => Math.max(10_000, Math.floor(n / 10));

/** Time `n` picks + releases; returns ns per pick. */
function timePicks(state, balancer, n) {
  const t0 = process.hrtime.bigint();
  picks(state, balancer, n);
  return Number(process.hrtime.bigint() - t0) / n;
}

// ---------------------------------------------------------------- worker thread

async function workerMain() {
  const { dist, algorithm, weights, buffer, go, seed, count } = workerData;
  const m = await load(dist);
  const state = m.SharedState.attach(buffer);
  const balancer = build(m, state, algorithm, weights, seed);
  picks(state, balancer, warmup(count));
  const flag = new Int32Array(go);
  Atomics.add(flag, 1, 1); // ready
  Atomics.notify(flag, 1);
  Atomics.wait(flag, 0, 0); // both threads start together
  parentPort.postMessage({ nsPerPick: timePicks(state, balancer, count) });
}

/** Two threads picking `count` times each over one buffer; ns per pick of each. */
async function twoThreads(m, dist, algorithm, weights, count) {
  const state = layoutState(m, algorithm, weights);
  const go = new SharedArrayBuffer(8);
  const flag = new Int32Array(go);
  const workers = [1, 2].map(
    (seed) => new Worker(new URL(import.meta.url), { workerData: { dist, algorithm, weights, buffer: state.buffer, go, seed, count } }),
  );
  const results = workers.map(
    (w) =>
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
      }),
  );
  while (Atomics.load(flag, 1) < 2) await new Promise((r) => setTimeout(r, 5));
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  const out = await Promise.all(results);
  await Promise.all(workers.map((w) => w.terminate()));
  return out.map((r) => r.nsPerPick);
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(opts.dist, 'balancer', 'registry.js'))) throw new Error(`${opts.dist} has no build: run npm run build first`);
  const m = await load(opts.dist);
  const algorithms = m.ALGORITHMS.filter((a) => !opts.only || opts.only.includes(a));
  const rows = [];
  const notes = [];
  for (const algorithm of algorithms) {
    for (const [size, weights] of Object.entries(POOLS)) {
      const state = layoutState(m, algorithm, weights);
      const balancer = build(m, state, algorithm, weights, 1);
      picks(state, balancer, warmup(opts.picks));
      const one = timePicks(state, balancer, opts.picks);
      const two = await twoThreads(m, opts.dist, algorithm, weights, opts.picks);
      const row = { algorithm, backends: Number(size), weights, oneThreadNs: one, twoThreadsNs: two };
      rows.push(row);
      process.stdout.write(`${algorithm} ${size} backends: 1 thread ${fmt(one)} ns/pick, 2 threads ${two.map((n) => fmt(n)).join(' / ')} ns/pick\n`);
    }
  }

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    loadavg: os.loadavg().map((n) => n.toFixed(2)).join(' '),
    picks: opts.picks,
  };
  const md = [
    `# corelb pick micro-benchmark — ${meta.date}`,
    '',
    `node ${meta.node}, ${meta.platform}, ${meta.cpus}, load average at the end ${meta.loadavg}`,
    '',
    '| algorithm | backends | 1 thread ns/pick | 2 threads ns/pick (thread 1 / thread 2) |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.algorithm} | ${r.backends} | ${fmt(r.oneThreadNs)} | ${r.twoThreadsNs.map((n) => fmt(n)).join(' / ')} |`),
    '',
    `- ${meta.picks.toLocaleString('en-US')} timed picks per row and thread, after a 10% warm-up; each pick is released at once (in-flight stays 0-2).`,
    `- Weights: 3 backends ${POOLS[3].join(':')}; 16 backends ${POOLS[16].join(':')}. ewma has a latency observed for every backend first, so picks take its cost path.`,
    '- consistent-hash picks cycle through 1,024 request-key hashes (a ring lookup and walk each); the other algorithms pick without a key.',
    '- 2 threads: two worker_threads over one SharedArrayBuffer, started together, each with its own balancer (seeds 1 and 2); contention on the shared cursor and in-flight counters shows here.',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
  process.stdout.write('\n' + md + '\n');
  const resultsDir = path.join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(path.join(resultsDir, 'pick.json'), JSON.stringify({ meta, rows, notes }, null, 2) + '\n');
  writeFileSync(path.join(resultsDir, 'pick.md'), md + '\n');
  process.stdout.write('\nwrote native-free-bench/results/pick.md and pick.json\n');
}

if (isMainThread) {
  main().catch((e) => {
    process.stderr.write(`pick bench failed: ${e?.stack ?? e}\n`);
    process.exit(1);
  });
} else {
  workerMain().catch((e) => {
    process.stderr.write(`pick bench worker failed: ${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
