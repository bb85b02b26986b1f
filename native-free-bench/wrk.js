// Owns wrk, the C load generator (Debian's `wrk` package): finding it, its command line, running it once, and reading its output into the shape the bench reports.
//
// wrk prints (with --latency):
//     Running 5s test @ http://127.0.0.1:8080/
//       1 threads and 64 connections
//       Thread Stats   Avg      Stdev     Max   +/- Stdev
//         Latency     1.23ms  ...
//       Latency Distribution
//          50%    1.10ms
//          ...
//          99%    3.00ms
//       123456 requests in 5.00s, 12.34MB read
//       Socket errors: connect 0, read 0, write 0, timeout 0     (only when there are some)
//       Non-2xx or 3xx responses: 5                              (only when there are some)
//     Requests/sec:  24691.20
// Times carry a unit (us, ms, s, m, h); durations on the command line are whole seconds.

import { spawn } from 'node:child_process';
import { findExecutable } from './lib.js';

/** Full path of wrk (PATH, then /usr/sbin and friends), or null. */
export const findWrk = () => findExecutable('wrk');

const TIME_MS = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
const BYTES = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "1.23ms" -> 1.23 (milliseconds); NaN when it is not a wrk time. */
function timeMs(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  return m ? Number(m[1]) * TIME_MS[m[2]] : NaN;
}

/**
 * wrk's output -> the autocannon-shaped result run.js reads: { requests: { total }, duration (s),
 * latency: { p50, p99, mean } (ms), errors (connect + read + write), timeouts, non2xx,
 * throughput: { total } (bytes read), socketErrors }. Throws when the summary line is missing.
 */
export function parseWrk(text) {
  const sum = /^\s*(\d+) requests in ([\d.]+(?:us|ms|s|m|h)), ([\d.]+)([KMGT]?)B read/m.exec(text);
  if (!sum) throw new Error(`wrk: no "N requests in T" line in its output:\n${text.slice(-1500)}`);
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(text);
    return m ? timeMs(m[1]) : NaN;
  };
  const mean = /^\s*Latency\s+(\S+)/m.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const socketErrors = sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : { connect: 0, read: 0, write: 0, timeout: 0 };
  return {
    requests: { total: Number(sum[1]) },
    duration: timeMs(sum[2]) / 1000,
    latency: { p50: pct(50), p99: pct(99), mean: mean ? timeMs(mean[1]) : NaN },
    errors: socketErrors.connect + socketErrors.read + socketErrors.write,
    timeouts: socketErrors.timeout,
    non2xx: non ? Number(non[1]) : 0,
    throughput: { total: Number(sum[3]) * BYTES[sum[4]] },
    socketErrors,
  };
}

/** wrk's arguments: one thread, `connections`, whole seconds, --latency, `Connection: close` when `close`, and `headers` ({ name: value }). */
export function wrkArgs({ url, connections, seconds, close = false, threads = 1, headers = null }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency'];
  if (close) args.push('-H', 'Connection: close');
  if (headers) for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  return [...args, url];
}

/**
 * Run wrk once; resolves { result (parseWrk), output, pid } when it exits 0, rejects otherwise or
 * after `limitMs` (SIGKILL). `onSpawn(child)` sees the process (to stop it on an interrupt).
 */
export function runWrk(bin, spec, { limitMs, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, wrkArgs(spec), { stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs ?? (spec.seconds + 30) * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`wrk: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`wrk exited with ${signal ?? `code ${code}`}: ${output.slice(-800)}`));
      try {
        resolve({ result: parseWrk(output), output, pid: child.pid });
      } catch (err) {
        reject(err);
      }
    });
  });
}
