// Owns how a config problem is printed: `FILE:LINE:COL field.path: message`, one line each,
// the shape editors and `nginx -t` users already jump to.

import type { ConfigProblem } from './types.js';

export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.col}`;
  const message = p.message.replace(/\s*\n\s*/g, ' '); // one problem, one line
  return p.path === '' ? `${where}: ${message}` : `${where} ${p.path}: ${message}`;
}
