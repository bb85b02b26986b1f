// Owns `corelb check [--print]`: load a file and turn the result into an exit code and the text to print.
// The CLI prints `output` to stdout and exits with `exitCode`; no I/O besides reading the file.

import { formatProblem } from './format.js';
import { loadConfigFile } from './load.js';
import { printConfig } from './print.js';

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Exit 0 with `ok: FILE (N pools, M backends, W workers)` after a `warning:` line per warning (a
 * certificate that expires soon), or (with `print`) the normalised config as JSON, secrets
 * masked; or 1 with one line per problem.
 */
export function checkCommand(file: string, print = false): { exitCode: number; output: string } {
  const r = loadConfigFile(file);
  if (!r.ok) return { exitCode: 1, output: r.problems.map((p) => `${formatProblem(p)}\n`).join('') };
  if (print) return { exitCode: 0, output: printConfig(r.config) };
  const { pools, workers } = r.config;
  const backends = pools.reduce((n, p) => n + p.backends.length, 0);
  // a discover: pool's backends are only known once the primary has looked them up
  const discovered = pools.filter((p) => p.discover !== null).length;
  const byDns = discovered === 0 ? '' : ` + ${plural(discovered, 'pool')} found by DNS`;
  const warnings = r.warnings.map((w) => `warning: ${formatProblem(w)}\n`).join('');
  return {
    exitCode: 0,
    output: warnings + `ok: ${file} (${plural(pools.length, 'pool')}, ${plural(backends, 'backend')}${byDns}, ${plural(workers, 'worker')})\n`,
  };
}
