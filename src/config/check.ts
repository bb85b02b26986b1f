// Owns `corelb check`: load a file and turn the result into an exit code and the text to print.
// The CLI prints `output` to stdout and exits with `exitCode`; no I/O besides reading the file.

import { formatProblem } from './format.js';
import { loadConfigFile } from './load.js';

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Exit 0 with `ok: FILE (N pools, M backends, W workers)` after a `warning:` line per warning (a
 * certificate that expires soon), or 1 with one line per problem.
 */
export function checkCommand(file: string): { exitCode: number; output: string } {
  const r = loadConfigFile(file);
  if (!r.ok) return { exitCode: 1, output: r.problems.map((p) => `${formatProblem(p)}\n`).join('') };
  const { pools, workers } = r.config;
  const backends = pools.reduce((n, p) => n + p.backends.length, 0);
  const warnings = r.warnings.map((w) => `warning: ${formatProblem(w)}\n`).join('');
  return {
    exitCode: 0,
    output: warnings + `ok: ${file} (${plural(pools.length, 'pool')}, ${plural(backends, 'backend')}, ${plural(workers, 'worker')})\n`,
  };
}
