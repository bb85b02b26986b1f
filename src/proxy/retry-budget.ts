// Owns one worker's retry budget for one pool (Finagle's RetryBudget, simplified): every request
// deposits `ratio` of a token, every retry that sent bytes to a backend spends a whole one, and a
// small reserve refilled each second lets a quiet pool still retry. So retries stay under about
// `ratio` of recent traffic plus the reserve, and a dying pool is not flooded with repeats.

/** Retries per second a worker may always make per pool, whatever the traffic. */
export const RESERVE = 10;
/** Tokens a busy pool can save up: bounds a burst of retries after a long calm. */
const CAP = 100;
/**
 * Tokens are counted in millionths, in integers: adding 0.1 ten times in floating point gives
 * 0.9999999999999999, which would make 10% of 10 requests no retry at all.
 */
const UNIT = 1_000_000;

export class RetryBudget {
  /** Millionths of a token each request deposits. */
  private readonly ratio: number;
  /** `retry_budget: 0%` means no budgeted retries at all, reserve included. */
  private readonly reserve: number;
  /** In millionths of a token. */
  private tokens: number;

  constructor(ratio: number) {
    this.ratio = Math.round(ratio * UNIT);
    this.reserve = ratio > 0 ? RESERVE * UNIT : 0;
    this.tokens = this.reserve;
  }

  /** A request arrived (its first attempt). */
  deposit(): void {
    const t = this.tokens + this.ratio;
    this.tokens = t > CAP * UNIT ? CAP * UNIT : t;
  }

  /** True (and spent) when a retry may be made now. */
  withdraw(): boolean {
    if (this.tokens < UNIT) return false;
    this.tokens -= UNIT;
    return true;
  }

  /** Once a second: top the reserve up. */
  refill(): void {
    if (this.tokens < this.reserve) this.tokens = this.reserve;
  }
}
