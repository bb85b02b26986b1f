// Two proxies measured at the same time, under the same load, each in front of its own origin:
// CPU µs per request of each and their ratio, round by round. On a shared machine a neighbour's
// burst slows both sides of a round alike, so the ratio holds where sequential rows drift (run.js
// measures one target after another). Used for before/after comparisons of a change (two builds)
// and as a cross-check of corelb against nginx.
//
//   npm run bench:side -- --a nginx --b corelb
//   node native-free-bench/side-by-side.js --a corelb:/tmp/corelb-before/dist --b corelb --rounds 8
//
// Flags:
//   --a T, --b T     targets: corelb (this checkout's dist/), corelb:DIR (a build directory whose
//                    imports resolve from this checkout's node_modules, e.g. a copy of dist/ made
//                    before a change, kept inside the repository), nginx (peers/nginx.conf.template),
//                    or floor (floor.js: a least proxy of corelb's parts, to split corelb's gap)
//   --a-yaml L, --b-yaml L   a top-level line added to that side's corelb config, e.g.
//                    --b-yaml "forwarded_for: false" (same build, one setting apart)
//   --a-node F, --b-node F   node flags for that side's corelb (space-separated), e.g.
//                    --b-node "--single-threaded-gc" (the data plane it forks inherits them)
//   --workers N      corelb's `workers` on both sides (default 1)
//   --rounds N       measured rounds (default 6); a warm-up of 10,000 requests each comes first
//   --requests N     requests per side and round (default 60,000; post: N / 20)
//   --scenario S     get (GET /, 2-byte answer, 64 connections; default) or post (1 MiB bodies, 8)
//   --load L         autocannon (default: --requests per side) or wrk (get only: one wrk process per
//                    side, --seconds long, at once; the load generator of run.js's main figure)
//   --seconds N      wrk's measured seconds per side and round (default 5; warm-up 1)
//   --browser-fields the get scenario's requests carry the 8 more fields of a browser's (run.js's
//                    get-fields scenario), not only Host
//   --help
//
// corelb is started through its CLI (`corelb start`, workers: 1 unless --workers, access log off) and measured with
// its whole process tree (supervisor + data plane); nginx with master + worker. CPU: /proc/PID/stat
// utime + stime. Load: wrk, one process per side, or autocannon, both sides from this process, at once. Prints a Markdown table
// and the median ratio B/A; nothing asserts a speed.

import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BROWSER_FIELDS } from './run/scenarios.js';
import { findWrk, runWrk } from './wrk.js';
import { REPO_ROOT, corelbYaml, eachFlag, findExecutable, fmt, freePort, resolvePackage, spawnUntilListening, spawnUntilReady, startOrigin, stopChild, treeCpuMicros } from './lib.js';

function parseArgs(argv) {
  const o = { a: 'nginx', b: 'corelb', aYaml: '', bYaml: '', aNode: '', bNode: '', workers: 1, rounds: 6, requests: 60_000, scenario: 'get', load: null, seconds: 5, browserFields: false };
  eachFlag(argv, (a, next, num) => {
    if (a === '--a') o.a = next();
    else if (a === '--b') o.b = next();
    else if (a === '--a-yaml') o.aYaml = next();
    else if (a === '--b-yaml') o.bYaml = next();
    else if (a === '--a-node') o.aNode = next();
    else if (a === '--b-node') o.bNode = next();
    else if (a === '--rounds') o.rounds = Math.floor(num());
    else if (a === '--workers') o.workers = Math.floor(num());
    else if (a === '--requests') o.requests = Math.floor(num());
    else if (a === '--seconds') o.seconds = num();
    else if (a === '--browser-fields') o.browserFields = true;
    else if (a === '--load') {
      o.load = next();
      if (o.load !== 'wrk' && o.load !== 'autocannon') throw new Error('--load: wrk or autocannon');
    }
    else if (a === '--scenario') {
      o.scenario = next();
      if (o.scenario !== 'get' && o.scenario !== 'post') throw new Error('--scenario: get or post');
    } else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node native-free-bench/side-by-side.js [--a T] [--b T] [--workers N] [--rounds N] [--requests N] [--scenario get|post]\n  T: corelb | corelb:DIR | nginx | floor\n');
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  });
  return o;
}

/** Start target `spec` in front of its own origin; returns { label, pid, port, stop }. */
async function startTarget(spec, yamlLine, workers, nodeFlags = '') {
  const origin = await startOrigin(1);
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-side-'));
  const cleanup = async (child) => {
    await stopChild(child, 5000);
    await origin.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  if (spec === 'nginx') {
    const bin = findExecutable('nginx');
    if (!bin) throw new Error('nginx not found on PATH or in /usr/sbin (apt-get install nginx)');
    let conf = readFileSync(path.join(REPO_ROOT, 'native-free-bench', 'peers', 'nginx.conf.template'), 'utf8');
    for (const [k, v] of Object.entries({ DIR: dir, PORT: String(port), ORIGIN: `127.0.0.1:${origin.port}` })) conf = conf.split(`{{${k}}}`).join(v);
    if (process.getuid?.() === 0) conf = `user ${os.userInfo().username};\n` + conf;
    writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const { child } = await spawnUntilListening(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { url: `http://127.0.0.1:${port}/`, cwd: dir, label: 'nginx' });
    return { label: 'nginx', pid: child.pid, port, stop: () => cleanup(child) };
  }
  if (spec === 'floor') {
    const { child } = await spawnUntilReady(process.execPath, [path.join(REPO_ROOT, 'native-free-bench', 'floor.js'), String(origin.port), String(port)], {
      isReady: (line) => line.trim() === 'ready',
      label: 'floor',
    });
    child.stdout.resume();
    child.stderr.resume();
    return { label: 'floor (floor.js: the same parts, none of corelb)', pid: child.pid, port, stop: () => cleanup(child) };
  }
  if (spec !== 'corelb' && !spec.startsWith('corelb:')) throw new Error(`unknown target ${spec}: corelb, corelb:DIR, nginx or floor`);
  const dist = spec === 'corelb' ? path.join(REPO_ROOT, 'dist') : path.resolve(spec.slice('corelb:'.length));
  const file = path.join(dir, 'corelb.yaml');
  writeFileSync(file, corelbYaml({ port, workers, backends: [origin.url], extra: yamlLine ? [yamlLine] : [] }));
  const flags = nodeFlags.split(' ').filter((f) => f.length > 0);
  const { child } = await spawnUntilReady(process.execPath, [...flags, path.join(dist, 'cli.js'), 'start', '--config', file], {
    isReady: (line) => line.includes('"msg":"ready"'),
    label: spec,
  });
  child.stdout.resume();
  child.stderr.resume();
  const label = spec === 'corelb' ? 'corelb (dist/)' : `corelb (${path.relative(REPO_ROOT, dist) || dist})`;
  const settings = [yamlLine, ...flags].filter((x) => x.length > 0).map((x) => `\`${x}\``).join(', ');
  return { label: settings ? `${label} with ${settings}` : label, pid: child.pid, port, stop: () => cleanup(child) };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.load === 'wrk' && opts.scenario !== 'get') throw new Error('--load wrk: the get scenario only');
  const wrk = opts.load === 'wrk' ? findWrk() : null;
  if (opts.load === 'wrk' && wrk === null) throw new Error('--load wrk: wrk not found (apt-get install wrk)');
  const loadName = wrk !== null ? 'wrk' : 'autocannon';
  /** One side's load: { requests: { total }, errors, timeouts, non2xx, rps }. `amount`: autocannon's requests; `seconds`: wrk's. */
  let load;
  if (wrk !== null) {
    load = async (port, _amount, seconds = opts.seconds) => {
      const { result } = await runWrk(wrk, { url: `http://127.0.0.1:${port}/`, connections: 64, seconds, headers: opts.browserFields ? BROWSER_FIELDS : null });
      return { ...result, rps: result.requests.total / result.duration };
    };
  } else {
    const resolved = resolvePackage('autocannon');
    if (!resolved) throw new Error('autocannon not found: npm ci first');
    const autocannon = (await import(pathToFileURL(resolved).href)).default;
    const body = opts.scenario === 'post' ? Buffer.alloc(1024 * 1024, 0x61) : null;
    load = async (port, amount) => {
      const r = await autocannon(
        body
          ? { url: `http://127.0.0.1:${port}/sink`, method: 'POST', body, connections: 8, amount: Math.max(1, Math.floor(amount / 20)) }
          : { url: `http://127.0.0.1:${port}/`, connections: 64, amount, headers: opts.browserFields ? BROWSER_FIELDS : undefined },
      );
      return { ...r, rps: r.requests.average };
    };
  }
  const a = await startTarget(opts.a, opts.aYaml, opts.workers, opts.aNode);
  const b = await startTarget(opts.b, opts.bYaml, opts.workers, opts.bNode);
  const rows = [];
  try {
    await Promise.all([load(a.port, 10_000, 1), load(b.port, 10_000, 1)]);
    for (let k = 0, retried = false; k < opts.rounds; k++) {
      const ca = treeCpuMicros(a.pid);
      const cb = treeCpuMicros(b.pid);
      let ra, rb;
      try {
        [ra, rb] = await Promise.all([load(a.port, opts.requests), load(b.port, opts.requests)]);
      } catch (err) {
        // wrk once exited 0 with no output at all (1 round in about 60): the load generator's
        // failure, not a proxy's; the round is measured again, once per run
        if (retried || !String(err?.message).startsWith('wrk: no "N requests in T" line')) throw err;
        retried = true;
        process.stdout.write(`round ${k + 1}: wrk printed no summary; measured again\n`);
        k--;
        continue;
      }
      const bad = ra.errors + ra.timeouts + ra.non2xx + rb.errors + rb.timeouts + rb.non2xx;
      if (bad > 0) throw new Error(`round ${k + 1}: ${bad} errors, timeouts or non-2xx answers`);
      const ua = (treeCpuMicros(a.pid) - ca) / ra.requests.total;
      const ub = (treeCpuMicros(b.pid) - cb) / rb.requests.total;
      rows.push({ ua, ub, ratio: ub / ua, rpsA: ra.rps, rpsB: rb.rps });
      process.stdout.write(`round ${k + 1}: A ${fmt(ua, 1)} µs/req, B ${fmt(ub, 1)} µs/req, B/A ${fmt(ub / ua, 3)}\n`);
    }
  } finally {
    await a.stop();
    await b.stop();
  }
  const sorted = rows.map((r) => r.ratio).sort((x, y) => x - y);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  process.stdout.write(
    [
      '',
      `A = ${a.label}, B = ${b.label}; ${opts.scenario === 'post' ? 'POST 1 MiB, 8 connections' : 'GET 2 B, 64 connections'}, load: ${loadName}; ` +
        `${os.availableParallelism()} CPUs, load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`,
      '',
      '| round | A CPU µs/req | B CPU µs/req | B / A | A req/s | B req/s |',
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((r, k) => `| ${k + 1} | ${fmt(r.ua, 1)} | ${fmt(r.ub, 1)} | ${fmt(r.ratio, 3)} | ${fmt(r.rpsA, 0)} | ${fmt(r.rpsB, 0)} |`),
      '',
      `median B / A: ${fmt(median, 3)} (range ${fmt(sorted[0], 3)}–${fmt(sorted[sorted.length - 1], 3)})`,
      '',
    ].join('\n'),
  );
}

main().catch((err) => {
  process.stderr.write(`side-by-side: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
