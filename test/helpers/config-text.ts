// Config text in unit tests: parse it as `test.yaml` (two cores, so `workers: auto` is 2), and
// take the Config (throwing with the problems) or the problems (throwing when there are none).
import { formatProblem, parseConfig } from '../../src/config/index.js';
import type { Config, ConfigProblem } from '../../src/config/index.js';

export const lines = (...l: string[]): string => `${l.join('\n')}\n`;

export function parse(text: string): ReturnType<typeof parseConfig> {
  return parseConfig(text, 'test.yaml', { availableParallelism: 2 });
}

export function config(text: string): Config {
  const r = parse(text);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

export function problems(text: string): readonly ConfigProblem[] {
  const r = parse(text);
  if (r.ok) throw new Error('expected problems, got a valid config');
  return r.problems;
}
