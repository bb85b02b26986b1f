// Owns the coarse per-thread millisecond clock that latency-aware balancers read on the request
// path. Date.now() returns a boxed double (a heap allocation per call, even in optimised code on
// Node 20), so pick()/observe() read a Float64Array slot instead, refreshed by one unref'd timer
// per thread (started by the first balancer that needs it; it never keeps a thread alive).
// TICK_MS of staleness is noise against EWMA time constants of seconds.

export const TICK_MS = 5;

const clock = new Float64Array(1);
let ticking = false;

/** Start the thread's clock (idempotent). */
export function startClock(): void {
  clock[0] = Date.now();
  if (ticking) return;
  ticking = true;
  setInterval(tick, TICK_MS).unref();
}

function tick(): void {
  clock[0] = Date.now();
}

/** Date.now() as of the last tick (0 before startClock). */
export function coarseNow(): number {
  return clock[0]!;
}
