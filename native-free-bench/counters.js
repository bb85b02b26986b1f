// Cost of the shared-memory bookkeeping one request does, with 1..N threads doing it at once
// against the same backend: take an in-flight slot, count the attempt, record a latency, count
// the answer's status class, release the slot. Shows what contention on shared cache lines costs
// as workers are added (run it on a machine with many cores). No proxy, no sockets.
//
//   node native-free-bench/counters.js [--threads N] [--iterations N] [--dist DIR] [--rounds N]
//
//   --threads N      largest thread count (default: available CPUs); runs 1, 2, 4, ... N
//   --iterations N   iterations per thread (default 2,000,000)
//   --rounds N       runs per thread count; the median is printed (default 3)
//   --dist DIR       the build whose src/shared/layout.js is measured (default dist/), e.g. a
//                    copy of dist/ from before a change, kept inside the repository
//
// Prints a Markdown table: ns per iteration per thread (median over the rounds, mean of the
// threads). Nothing asserts a speed.

import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { REPO_ROOT, eachFlag, fmt } from './lib.js';

async function layoutOf(dist) {
  return import(pathToFileURL(path.join(dist, 'shared', 'layout.js')).href);
}

if (!isMainThread) {
  const { SharedState } = await layoutOf(workerData.dist);
  const s = SharedState.attach(workerData.buffer, workerData.worker);
  const n = workerData.iterations;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    s.tryAcquireInflight(0, 0);
    s.countRequest(0);
    s.recordLatency(0, 1500 + (i & 1023));
    s.countStatus(0, 200);
    s.releaseInflight(0);
  }
  parentPort.postMessage(((performance.now() - t0) * 1e6) / n);
} else {
  const o = { threads: os.availableParallelism(), iterations: 2_000_000, rounds: 3, dist: path.join(REPO_ROOT, 'dist') };
  eachFlag(process.argv.slice(2), (flag, value, positive) => {
    if (flag === '--threads') o.threads = Math.floor(positive());
    else if (flag === '--iterations') o.iterations = Math.floor(positive());
    else if (flag === '--rounds') o.rounds = Math.floor(positive());
    else if (flag === '--dist') o.dist = path.resolve(value());
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write('usage: node native-free-bench/counters.js [--threads N] [--iterations N] [--rounds N] [--dist DIR]\n');
      process.exit(0);
    } else throw new Error(`unknown argument: ${flag}`);
  });
  const { SharedState } = await layoutOf(o.dist);
  const counts = [];
  for (let t = 1; t < o.threads; t *= 2) counts.push(t);
  counts.push(o.threads);
  const rows = [];
  for (const threads of counts) {
    const runs = [];
    for (let r = 0; r < o.rounds; r++) {
      const state = SharedState.create({ pools: [{ weights: [1, 1] }], workers: threads });
      const per = await Promise.all(
        Array.from({ length: threads }, (_, worker) =>
          new Promise((resolve, reject) => {
            const w = new Worker(new URL(import.meta.url), { workerData: { dist: o.dist, buffer: state.buffer, worker, iterations: o.iterations } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
        ),
      );
      if (state.requests(0) !== threads * o.iterations) throw new Error(`counted ${state.requests(0)} requests, expected ${threads * o.iterations}`);
      runs.push(per.reduce((a, b) => a + b, 0) / threads);
    }
    runs.sort((a, b) => a - b);
    rows.push({ threads, ns: runs[Math.floor((runs.length - 1) / 2)], low: runs[0], high: runs[runs.length - 1] });
  }
  const base = rows[0].ns;
  process.stdout.write(
    [
      `shared-state bookkeeping per request (${path.relative(REPO_ROOT, o.dist) || o.dist}), ${o.iterations.toLocaleString('en-US')} iterations per thread, ${os.availableParallelism()} CPUs, load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`,
      '',
      '| threads | ns / iteration / thread | (low–high) | vs 1 thread |',
      '| ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.threads} | ${fmt(r.ns, 1)} | ${fmt(r.low, 1)}–${fmt(r.high, 1)} | ${fmt(r.ns / base, 2)}x |`),
      '',
    ].join('\n'),
  );
}
