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

const atExit: (() => void)[] = [];

/** The one exit hook of the test process: `fn` runs when it exits, however it exits. */
export function onTestProcessExit(fn: () => void): void {
  if (atExit.length === 0) process.on('exit', () => atExit.forEach((f) => f()));
  atExit.push(fn);
}
