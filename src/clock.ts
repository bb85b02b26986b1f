// Owns the one coarse millisecond clock of a thread: deadlines, queue waits, idle sweeps and the
// latency-aware balancer all read it. Date.now() returns a boxed double (a heap allocation per
// call, even in optimised code on Node 20), so readers take a Float64Array slot instead, refreshed
// by one unref'd timer per thread (it never keeps a thread alive) at the finest rate any reader
// asked for: 50 ms for deadlines, 5 ms for EWMA, whose time constants are seconds.

const clock = new Float64Array(1);
clock[0] = Date.now(); // never 0, also where no timer runs (a unit test, a tool)
let tickMs = 0;
let timer: NodeJS.Timeout | null = null;

function tick(): void {
  clock[0] = Date.now();
}

/** Start the thread's clock, ticking at least every `everyMs` (idempotent; the finest rate wins). */
export function startClock(everyMs: number): void {
  clock[0] = Date.now();
  if (timer !== null && tickMs <= everyMs) return;
  if (timer !== null) clearInterval(timer);
  tickMs = everyMs;
  timer = setInterval(tick, everyMs);
  timer.unref();
}

/** Date.now() as of the last tick (as of the module's load before startClock). */
export function coarseNow(): number {
  return clock[0]!;
}

/** Read the time now and keep it (a caller that needs it exact at this moment, e.g. a timer's callback). */
export function refreshClock(): number {
  return (clock[0] = Date.now());
}
