// SIGKILL for child processes a test started, whatever state they are in (already gone is fine).
import type { ChildProcess } from 'node:child_process';

export function killQuietly(p: ChildProcess): void {
  try {
    p.kill('SIGKILL');
  } catch {
    /* already gone */
  }
}

export function killAll(children: Iterable<ChildProcess>): void {
  for (const p of children) killQuietly(p);
}
