// Profile corelb under load with clinic: flame (default) or doctor (--doctor).
//
//   npm run profile                      (= npm run build --silent && node native-free-bench/profile.js)
//   npm run profile -- --doctor
//   node native-free-bench/profile.js --duration 20 --path /bytes/16384
//
// Flags:
//   --doctor            clinic doctor instead of clinic flame
//   --duration N        seconds of load (default 10; 1 s warm-up comes first)
//   --connections N     autocannon keep-alive connections (default 64)
//   --path P            request path on the origin (default /: the 2-byte answer)
//   --mode M            main-thread (default) or data-plane, see below
//   --dist DIR          the corelb build to profile (default dist/)
//   --help
//
// What runs: the bench origin (origin.js) in its own process; corelb with `workers: 1` in front of
// it under clinic; autocannon (load-child.js, its own process) for the bounded time; then SIGINT to
// the profiled process so clinic writes its report; the HTML report's path is printed. Reports go
// to .clinic/ in the repository root (gitignored).
//
// Modes. corelb serves requests in worker threads inside its data plane process, and clinic
// cannot see them: flame (0x, `--prof`) records the main isolate only, doctor samples the main
// event loop. So:
//   main-thread (default)  native-free-bench/serve-main-thread.js: the data plane with its one
//                          serve task on the main thread (same config loading, shared-buffer
//                          layout, publisher and serve task as `corelb start`; no supervisor,
//                          no piscina thread). The request path is what clinic sees.
//   data-plane             CORELB_DATA_PLANE=1 node dist/cli.js start (the supervisor skipped):
//                          the real process, but the flame graph holds only its primary thread
//                          (config, publisher, start-up), none of the request path. On SIGINT
//                          0x exits the process at once, which aborts it (a worker thread still
//                          holds uWS sockets: "uv_loop_close() while having open handles"); the
//                          report is written anyway.
//
// clinic is a dev dependency, resolved with a bare specifier (the project's node_modules, then
// NODE_PATH). NO_INSIGHT=1 is set for it: without a terminal its usage-statistics prompt makes it
// exit at once, silently.

import { fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuProfiles, selfTime } from './cpu-profile.js';
import { BENCH_DIR, REPO_ROOT, corelbYaml, eachFlag, fmt, freePort, probe, resolvePackage, spawnUntilReady, startOrigin, stopChild } from './lib.js';

function parseArgs(argv) {
  const o = { tool: 'flame', duration: 10, connections: 64, path: '/', mode: 'main-thread', dist: path.join(REPO_ROOT, 'dist') };
  eachFlag(argv, (a, next, num) => {
    if (a === '--doctor') o.tool = 'doctor';
    else if (a === '--bubbleprof') o.tool = 'bubbleprof';
    else if (a === '--cpu-prof') o.tool = 'cpu-prof';
    else if (a === '--flame') o.tool = 'flame';
    else if (a === '--duration') o.duration = num();
    else if (a === '--connections') o.connections = Math.floor(num());
    else if (a === '--path') o.path = next();
    else if (a === '--mode') {
      o.mode = next();
      if (o.mode !== 'main-thread' && o.mode !== 'data-plane') throw new Error('--mode: main-thread or data-plane');
    } else if (a === '--dist') o.dist = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node native-free-bench/profile.js [--doctor | --bubbleprof | --cpu-prof] [--duration N] [--connections N] [--path P]\n' +
          '       [--mode main-thread|data-plane] [--dist DIR]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  });
  if (!o.path.startsWith('/')) throw new Error('--path must start with /');
  return o;
}

/** Runs the load child once (warm-up 1 s + duration); resolves its autocannon result. */
function load(url, opts) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(BENCH_DIR, 'load-child.js'), [], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const limitMs = (1 + opts.duration) * 1000 + 30000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`load generator did not finish within ${limitMs} ms`));
    }, limitMs);
    child.on('message', (m) => {
      if (m.type === 'warmed') child.send({ type: 'go' });
      else if (m.type === 'done') {
        clearTimeout(timer);
        resolve(m.result);
      } else if (m.type === 'error') {
        clearTimeout(timer);
        reject(new Error(m.message));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`load generator exited with code ${code}`));
    });
    child.send({ type: 'run', mode: 'autocannon', url, method: 'GET', connections: opts.connections, pipelining: 1, warmup: 1, duration: opts.duration });
  });
}

/**
 * The origin, corelb's config in a temp dir in front of it, and `cleanup`: `stopProfiled()`, then
 * the origin and the temp dir. SIGINT cleans up and exits 130.
 */
async function prepare(opts, stopProfiled) {
  const cli = path.join(opts.dist, 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} missing: run npm run build first`);
  const origin = await startOrigin(1);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corelb-profile-'));
  const port = await freePort();
  const file = path.join(dir, 'corelb.yaml');
  writeFileSync(file, corelbYaml({ port, backends: [origin.url] }));
  const cleanup = async () => {
    await stopProfiled();
    await origin.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => cleanup().finally(() => process.exit(130)));
  return { cli, origin, port, file, cleanup };
}

/**
 * --cpu-prof: the real data plane, `node --cpu-prof dist/cli.js start` (supervisor, primary and
 * worker threads all profiled: fork and Worker inherit the flag), under the same load, stopped
 * with SIGTERM so every thread exits and writes its profile; prints the files and the worker
 * thread's functions by self time. Profiles go to .clinic/cpuprof-<time>/ (gitignored).
 */
async function cpuProf(opts) {
  const out = path.join(REPO_ROOT, '.clinic', `cpuprof-${Date.now()}`);
  mkdirSync(out, { recursive: true });
  let child = null;
  const { cli, port, file, cleanup } = await prepare(opts, async () => {
    if (child) await stopChild(child, 10000);
  });
  try {
    ({ child } = await spawnUntilReady(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${out}`, cli, 'start', '--config', file], {
      isReady: (l) => l.includes('"msg":"ready"'),
      label: 'corelb --cpu-prof',
    }));
    child.stdout.resume();
    child.stderr.resume();
    const url = `http://127.0.0.1:${port}${opts.path}`;
    process.stdout.write(`corelb start under node --cpu-prof (pid ${child.pid}); load: ${opts.connections} connections, 1 s warm-up + ${opts.duration} s on ${opts.path}\n`);
    const r = await load(url, opts);
    process.stdout.write(`load done: ${fmt(r.requests.total / r.duration, 0)} req/s (under the profiler), errors ${r.errors + r.timeouts}, non-2xx ${r.non2xx}\n`);
    const exit = await stopChild(child, 10000);
    child = null;
    if (exit.code !== 0) process.stdout.write(`corelb exited with ${exit.signal ?? `code ${exit.code}`}: some threads may not have written their profile\n`);
    const files = cpuProfiles(out);
    process.stdout.write(`\nprofiles (one per thread; open in Chrome DevTools > Performance, or speedscope):\n`);
    for (const f of files) process.stdout.write(`  ${path.relative(REPO_ROOT, f.file)}  (pid ${f.pid}, thread ${f.threadId}${f.threadId > 0 ? ': a worker thread, the request path' : ''})\n`);
    for (const f of files.filter((f) => f.threadId > 0)) {
      const { totalMs, rows } = selfTime(f.file, 20);
      process.stdout.write(`\nworker thread ${f.threadId}: ${fmt(totalMs, 0)} ms sampled; functions by self time\n\n| self ms | share | function | where |\n| ---: | ---: | --- | --- |\n`);
      for (const x of rows) process.stdout.write(`| ${fmt(x.ms, 0)} | ${fmt(x.share * 100, 1)}% | ${x.name} | ${x.where} |\n`);
    }
  } finally {
    await cleanup();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.tool === 'cpu-prof') return cpuProf(opts);
  const clinicBin = resolvePackage('clinic/bin.js');
  if (!clinicBin) {
    throw new Error('clinic not found: it is a dev dependency (npm install), or point NODE_PATH at a node_modules that has clinic 13');
  }
  let clinic = null;
  let profiledPid = 0;
  const { cli, origin, port, file, cleanup } = await prepare(opts, async () => {
    if (profiledPid) {
      try {
        process.kill(profiledPid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (clinic && clinic.exitCode === null) clinic.kill('SIGKILL');
  });

  try {
    const target =
      opts.mode === 'main-thread'
        ? [path.join(BENCH_DIR, 'serve-main-thread.js'), '--config', file, '--dist', opts.dist]
        : [cli, 'start', '--config', file];
    const env = { ...process.env, NO_INSIGHT: '1' };
    if (opts.mode === 'data-plane') env.CORELB_DATA_PLANE = '1';
    const args = [clinicBin, opts.tool, '--open=false', '--', process.execPath, ...target];
    process.stdout.write(`clinic ${opts.tool} (${opts.mode}), origin ${origin.url}, corelb on 127.0.0.1:${port}\n`);

    clinic = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (d) => {
      output += d;
      if (output.length > 200000) output = output.slice(-100000);
    };
    clinic.stdout.setEncoding('utf8');
    clinic.stderr.setEncoding('utf8');
    clinic.stdout.on('data', onData);
    clinic.stderr.on('data', onData);
    const exited = new Promise((resolve) => clinic.on('exit', (code, signal) => resolve({ code, signal })));

    // ready: corelb's JSON "ready" line, which carries the profiled process's pid
    const t0 = Date.now();
    while (!profiledPid) {
      const line = output.split('\n').find((l) => l.includes('"msg":"ready"'));
      if (line) profiledPid = JSON.parse(line).pid;
      else if (clinic.exitCode !== null) throw new Error(`clinic exited before corelb was ready:\n${output.slice(-3000)}`);
      else if (Date.now() - t0 > 60000) throw new Error(`corelb not ready under clinic after 60 s:\n${output.slice(-3000)}`);
      else await new Promise((r) => setTimeout(r, 100));
    }
    const url = `http://127.0.0.1:${port}${opts.path}`;
    const p = await probe(url);
    if (p.status !== 200) throw new Error(`probe ${url}: status ${p.status}`);
    process.stdout.write(`corelb pid ${profiledPid} ready; load: ${opts.connections} connections, 1 s warm-up + ${opts.duration} s on ${opts.path}\n`);

    const r = await load(url, opts);
    process.stdout.write(
      `load done: ${fmt(r.requests.total / r.duration, 0)} req/s (under the profiler), p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ` +
        `errors ${r.errors + r.timeouts}, non-2xx ${r.non2xx}\n`,
    );

    process.stdout.write(`SIGINT to ${profiledPid}; clinic is writing the report (this can take a minute) ...\n`);
    process.kill(profiledPid, 'SIGINT');
    // at most 180 s for the report; the timer is cleared as soon as clinic exits, so this script
    // exits when the report is written (an armed timer kept it alive for the full 180 s)
    let limitTimer;
    const limit = new Promise((resolve) => (limitTimer = setTimeout(() => resolve(null), 180000)));
    const end = await Promise.race([exited, limit]);
    clearTimeout(limitTimer);
    profiledPid = 0;
    if (end === null) throw new Error(`clinic did not finish within 180 s:\n${output.slice(-3000)}`);
    const m = output.match(/Generated HTML file is (\S+)/);
    if (!m) throw new Error(`clinic exited (code ${end.code}) without a report:\n${output.slice(-3000)}`);
    const html = m[1].startsWith('file://') ? new URL(m[1]).pathname : path.resolve(REPO_ROOT, m[1]);
    process.stdout.write(`\nreport: ${html}\n`);
    if (opts.mode === 'data-plane') {
      process.stdout.write('note: data-plane mode: the request path runs in a worker thread this report does not cover (see --mode main-thread)\n');
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`profile: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
