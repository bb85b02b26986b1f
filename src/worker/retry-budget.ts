// Owns one worker's retry budget for one pool (Finagle's RetryBudget, simplified): every request
// deposits `ratio` of a token, every retry that sent bytes to a backend spends a whole one, and a
// small reserve refilled each second lets a quiet pool still retry. So retries stay under about
// `ratio` of recent traffic plus the reserve, and a dying pool is not flooded with repeats.

/** Retries per second a worker may always make per pool, whatever the traffic. */
export const RESERVE = 10;
/** Tokens a busy pool can save up: bounds a burst of retries after a long calm. */
const CAP = 100;

export class RetryBudget {
  private readonly ratio: number;
  /** `retry_budget: 0%` means no budgeted retries at all, reserve included. */
  private readonly reserve: number;
  private tokens: number;

  constructor(ratio: number) {
    this.ratio = ratio;
    this.reserve = ratio > 0 ? RESERVE : 0;
    this.tokens = this.reserve;
  }

  /** A request arrived (its first attempt). */
  deposit(): void {
    const t = this.tokens + this.ratio;
    this.tokens = t > CAP ? CAP : t;
  }

  /** True (and spent) when a retry may be made now. */
  withdraw(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Once a second: top the reserve up. */
  refill(): void {
    if (this.tokens < this.reserve) this.tokens = this.reserve;
  }
}
