// Owns one measurement of run.js: a target started, probed, put under load, and its CPU, RSS and the load generator's result read around the window.

import { fork, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, REPO_ROOT, RssSampler, fmt, probe, reapedChildrenCpuMicros, sleep, stopSpawned, treeCpuMicros, treeRssBytes } from '../lib.js';
import { runWrk } from '../wrk.js';
import { MiB, loadFor } from './scenarios.js';

const mb = (bytes) => bytes / MiB;

/** An interrupt: the running load generator killed, every target and origin stopped (failures ignored). */
export async function stopEverything(live, targets, origins) {
  process.stdout.write('stopping the load, the targets and the origins ...\n');
  live.interrupted = true;
  live.load?.kill('SIGKILL');
  for (const t of targets) await t.stop().catch(() => {});
  await stopSpawned(); // a target caught while starting
  for (const o of origins) await o?.stop().catch(() => {});
}

/** One reading at a window's edge: the clock, the CPU of target, origin and load generator, the target's RSS. */
function sampleAt(target, origin, genCpu) {
  return { t: process.hrtime.bigint(), cpu: treeCpuMicros(target.pid), originCpu: treeCpuMicros(origin.pid), genCpu: genCpu(), rss: treeRssBytes(target.pid) };
}

/** The measured window between two readings, with the load generator's result. */
function windowBetween(before, after, result) {
  return {
    result,
    cpuMicros: after.cpu - before.cpu,
    originCpuMicros: after.originCpu - before.originCpu,
    loadGenCpuMicros: after.genCpu - before.genCpu,
    windowSec: Number(after.t - before.t) / 1e9,
    rssWindowStart: before.rss,
    rssWindowEnd: after.rss,
  };
}

/**
 * One window of a wrk scenario: a warm-up run of wrk (whole seconds, at least 1), then the
 * measured run; the target's and the origin's process trees are read from /proc right before
 * wrk is spawned and right after it exits. wrk's own CPU is not the target's: it is read from
 * this process's reaped-children time (/proc/self/stat cutime + cstime) after it exits.
 * `live.load` holds the running wrk, so an interrupt can stop it.
 */
async function measureWrk(target, origin, scenario, opts, ctx) {
  const rssBefore = treeRssBytes(target.pid);
  const rss = new RssSampler(target.pid, 100);
  const spec = { url: target.url + scenario.path, connections: scenario.connections(opts), close: scenario.wrk.close, headers: scenario.headers ?? null, threads: opts.wrkThreads ?? 1 };
  const onSpawn = (child) => (ctx.live.load = child);
  try {
    let warm = null;
    if (opts.warmup > 0) {
      const w = await runWrk(ctx.wrkBin, { ...spec, seconds: Math.max(1, Math.round(opts.warmup)) }, { onSpawn });
      warm = { requests: w.result.requests.total, errors: w.result.errors, timeouts: w.result.timeouts, non2xx: w.result.non2xx, duration: w.result.duration };
    }
    const before = sampleAt(target, origin, reapedChildrenCpuMicros);
    const { result } = await runWrk(ctx.wrkBin, { ...spec, seconds: opts.duration }, { onSpawn });
    const after = sampleAt(target, origin, reapedChildrenCpuMicros);
    return {
      ...windowBetween(before, after, result),
      peakRss: rss.stop(),
      rssBefore,
      rssHeld: NaN,
      warm,
    };
  } finally {
    rss.stop();
    ctx.live.load = null;
  }
}

/** One window of an autocannon (or own-client) scenario, the load in load-child.js. */
function measureChild(target, origin, scenario, opts, ctx) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(BENCH_DIR, 'load-child.js'), [], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    ctx.live.load = child;
    const rssBefore = treeRssBytes(target.pid);
    const rss = new RssSampler(target.pid, 100);
    // Hard bound on the whole measurement: warm-up (or opening idle connections) + duration + slack.
    const limitMs = (scenario.mode === 'idle' ? 120 : opts.warmup + opts.duration) * 1000 + 30000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`load generator did not finish within ${limitMs} ms`));
    }, limitMs);
    let before = null;
    let rssHeld = NaN;
    let warm = null;
    let settled = false;
    function finish(err, value) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.live.load = null;
      const peak = rss.stop();
      if (err) reject(err);
      else resolve({ ...value, peakRss: peak, rssBefore, rssHeld, warm });
    }
    const sample = () => sampleAt(target, origin, () => treeCpuMicros(child.pid));
    child.on('message', async (msg) => {
      if (msg.type === 'warmed') {
        warm = msg.warmup;
        if (scenario.idleSec) {
          // connections open and idle: let the target settle, then take its RSS
          await sleep(scenario.idleSec * 1000);
          rssHeld = treeRssBytes(target.pid);
        }
        if (settled) return;
        before = sample();
        child.send({ type: 'go' });
      } else if (msg.type === 'done') {
        const after = sample();
        finish(null, windowBetween(before, after, msg.result));
      } else if (msg.type === 'error') {
        finish(new Error(`load generator: ${msg.message}`));
      }
    });
    child.on('exit', (code) => {
      if (!settled) finish(new Error(`load generator exited with code ${code}`));
    });
    child.send({
      type: 'run',
      mode: scenario.mode ?? 'autocannon',
      url: target.url + scenario.path,
      method: scenario.method,
      bodyBytes: scenario.bodyBytes,
      headers: scenario.bodyBytes ? { 'content-type': 'application/octet-stream' } : scenario.headers,
      requests: scenario.requests,
      connections: scenario.connections(opts),
      pipelining: opts.pipelining,
      warmup: opts.warmup,
      duration: opts.duration,
      inflight: 256,
    });
  });
}

export function runUpstreamClient(origin, quick, dist, live = { load: null }) {
  return new Promise((resolve) => {
    const args = [path.join(BENCH_DIR, 'upstream-client.js'), '--origin', origin.url, '--json', '--dist', dist];
    if (quick) args.push('--quick');
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    live.load = child;
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150000); // 3 clients x (<= 10 s warm-up + <= 20 s + start-up)
    child.on('exit', (code) => {
      clearTimeout(timer);
      live.load = null;
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        resolve({ error: `upstream-client.js exited ${code} without a JSON result: ${out.slice(-500)}` });
      }
    });
  });
}

/** Start `target`, probe it, measure one row of `sname`, stop it. Failures are recorded on the row. */
export async function measureRow(target, sname, scenario, ctx, origin, opts) {
  const row = { name: target.name, label: target.label, group: target.group, scenario: sname, loadavg1: Number(os.loadavg()[0].toFixed(2)) };
  let started = false;
  try {
    try {
      await target.start(ctx);
    } catch (err) {
      if (ctx.live.interrupted) throw err;
      // a shared machine: once, a start was cut by a SIGTERM from outside; try once more
      row.startRetried = String(err && err.message ? err.message : err).split('\n')[0];
      process.stdout.write(`  ${target.name}: start failed (${row.startRetried}); once more in 1 s\n`);
      await sleep(1000);
      await target.start(ctx);
    }
    started = true;
    row.pid = target.pid;
    row.label = target.label; // the origin alone is named after the scenario's origin
    const p = await probe(target.url + (scenario.probePath ?? scenario.path), { method: scenario.probeMethod ?? scenario.method });
    if (!scenario.check(p)) throw new Error(`probe failed: status ${p.status}, body ${JSON.stringify(p.body.slice(0, 80))}`);
    const m = loadFor(scenario, opts) === 'wrk' ? await measureWrk(target, origin, scenario, opts, ctx) : await measureChild(target, origin, scenario, opts, ctx);
    const r = m.result;
    const requests = r.requests.total;
    Object.assign(row, {
      requests,
      durationSec: r.duration,
      rps: requests / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      latencyMean: r.latency.mean,
      cpuMicros: m.cpuMicros,
      cpuUsPerReq: requests > 0 ? m.cpuMicros / requests : NaN,
      originCpuUsPerReq: target.name === 'direct' ? null : requests > 0 ? m.originCpuMicros / requests : NaN,
      cpuWindowSec: m.windowSec,
      targetCpuCores: m.cpuMicros / 1e6 / m.windowSec,
      loadGenCpuCores: m.loadGenCpuMicros / 1e6 / m.windowSec,
      peakRssMB: mb(m.peakRss),
      rssBeforeMB: mb(m.rssBefore),
      rssWindowStartMB: mb(m.rssWindowStart),
      rssWindowEndMB: mb(m.rssWindowEnd),
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      statusCodes: r.statusCodeStats,
      socketErrors: r.socketErrors, // wrk: connect, read, write, timeout
      warmup: m.warm,
    });
    if (scenario.mib === 'down') row.mibps = mb(r.throughput.total) / r.duration;
    else if (scenario.mib === 'up') row.mibps = mb(requests * scenario.bodyBytes) / r.duration;
    if (scenario.mode === 'idle') {
      row.idle = r.idle;
      row.rssHeldMB = mb(m.rssHeld);
    }
    const logBytes = target.logBytes?.() ?? null;
    if (logBytes !== null) row.accessLogBytes = logBytes;
    process.stdout.write(
      `  ${target.name}: ${fmt(row.rps, 0)} req/s${row.mibps !== undefined ? `, ${fmt(row.mibps, 0)} MiB/s` : ''}, p50 ${row.p50} ms, p99 ${row.p99} ms, ` +
        `${fmt(row.cpuUsPerReq, 1)} µs CPU/req (target ${fmt(row.targetCpuCores, 2)} cores busy, load generator ${fmt(row.loadGenCpuCores, 2)}), ` +
        `peak RSS ${fmt(row.peakRssMB, 1)} MB, errors ${row.errors}, non-2xx ${row.non2xx}` +
        (row.idle
          ? `; idle: ${row.idle.opened}/${row.idle.requested} open in ${fmt(row.idle.openMs / 1000, 1)} s, RSS ${fmt(row.rssBeforeMB, 1)} -> ${fmt(row.rssHeldMB, 1)} MB held, ${row.idle.closedWhileIdle} closed while idle`
          : '') +
        (logBytes === null ? '' : `, access log ${fmt(mb(logBytes), 1)} MB so far`) +
        '\n',
    );
  } catch (err) {
    row.error = String(err && err.message ? err.message : err);
    process.stdout.write(`  ${target.name}: FAILED: ${row.error}\n`);
  } finally {
    if (started || target.child) {
      const exit = await target.stop();
      if (exit) {
        row.exit = exit;
        const ok = (exit.code === 0 || (exit.signal === 'SIGTERM' && target.group !== 'corelb')) && !exit.killed;
        if (!ok) {
          process.stdout.write(
            `  ${target.name} stopped with SIGTERM: exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''}${exit.killed ? ' (SIGKILLed after 10 s)' : ''}  <-- expected a graceful exit\n`,
          );
        }
      }
    }
  }
  return row;
}

/**
 * One target's rounds of a scenario as one row: the round with the median CPU µs/req (all its
 * figures from that one measurement), with every round's main figures kept in `rounds`.
 */
export function medianRound(list) {
  const ok = list.filter((r) => !r.error).sort((a, b) => a.cpuUsPerReq - b.cpuUsPerReq);
  const pick = ok.length > 0 ? ok[Math.floor((ok.length - 1) / 2)] : list[0];
  if (list.length === 1) return pick;
  return {
    ...pick,
    rounds: list.map((r) => (r.error ? { error: r.error } : { rps: r.rps, cpuUsPerReq: r.cpuUsPerReq, p99: r.p99, mibps: r.mibps, loadavg1: r.loadavg1 })),
  };
}
