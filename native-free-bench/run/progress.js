// Owns run.js's progress: rows done of the rows planned, time elapsed, and an estimate of the time left.
//
// Each planned row carries an estimate in seconds (warm-up + window + start and stop of the
// target). Once rows are done, the estimate of the rows left is scaled by how long the rows done
// took against their own estimates, so a slow machine corrects the figure as the run goes.

/** "1m05s", "42s". */
export function clock(sec) {
  const s = Math.max(0, Math.round(sec));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class Progress {
  /** `estimates`: seconds per planned row, in order; `extraSec`: work after the rows (the upstream-client run). */
  constructor(estimates, extraSec = 0) {
    this.estimates = estimates;
    this.extraSec = extraSec;
    this.done = 0;
    this.t0 = Date.now();
  }
  get total() {
    return this.estimates.length;
  }
  elapsedSec() {
    return (Date.now() - this.t0) / 1000;
  }
  /** Seconds left: the estimates of the rows left (and the extra), scaled by actual / estimated so far. */
  leftSec() {
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    const doneEst = sum(this.estimates.slice(0, this.done));
    const scale = doneEst > 0 ? this.elapsedSec() / doneEst : 1;
    return scale * (sum(this.estimates.slice(this.done)) + this.extraSec);
  }
  /** One row finished: the line to print, e.g. "[3/24] 0m14s elapsed, about 1m40s left". */
  rowDone() {
    this.done++;
    return `[${this.done}/${this.total}] ${clock(this.elapsedSec())} elapsed, about ${clock(this.leftSec())} left`;
  }
}
