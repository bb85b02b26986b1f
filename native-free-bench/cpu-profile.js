// Owns the reading of V8 .cpuprofile files (node --cpu-prof): which thread a file is, and its functions by self time.
//
// `node --cpu-prof --cpu-prof-dir DIR dist/cli.js start ...` writes one file per thread when the
// thread exits, named CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile: the supervisor, the
// data plane's primary (thread 0) and each worker thread (1..N), which serves the requests. fork()
// and worker threads inherit the flag (execArgv), so one flag covers the whole process tree. The
// files open in Chrome DevTools (Performance panel) or speedscope.

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** The .cpuprofile files in `dir`, each with its pid and thread id: [{ file, pid, threadId }]. */
export function cpuProfiles(dir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => {
      const [, , , pid, threadId] = f.split('.');
      return { file: path.join(dir, f), pid: Number(pid), threadId: Number(threadId) };
    });
}

/**
 * Self time by function of one profile: [{ name, where, ms, share }], largest first, `top` of
 * them; `totalMs` is the profile's sampled time. A sample's time is its timeDelta.
 */
export function selfTime(file, top = 15) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map();
  let totalMs = 0;
  p.samples.forEach((id, i) => {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    totalMs += dt;
    const f = byId.get(id)?.callFrame;
    if (!f) return;
    const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}\t${where}`;
    ms.set(key, (ms.get(key) ?? 0) + dt);
  });
  const rows = [...ms.entries()]
    .map(([k, v]) => {
      const [name, where] = k.split('\t');
      return { name, where, ms: v, share: totalMs > 0 ? v / totalMs : 0 };
    })
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top);
  return { totalMs, rows };
}
