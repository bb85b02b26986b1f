// One worker's retry budget for one pool: a reserve of 10 retries a second, `ratio` of a retry
// earned per request, a cap on savings, and 0% meaning no retries at all.
import { describe, expect, it } from 'vitest';
import { RESERVE, RetryBudget } from '../../../src/proxy/retry-budget.js';

/** Withdraws until refused; returns how many were granted (bounded, so a bug cannot hang). */
function drain(b: RetryBudget): number {
  let n = 0;
  while (n < 10_000 && b.withdraw()) n++;
  return n;
}

function deposits(b: RetryBudget, n: number): void {
  for (let k = 0; k < n; k++) b.deposit();
}

describe('RetryBudget', () => {
  it('starts with a reserve of 10 retries', () => {
    expect(RESERVE).toBe(10);
    expect(drain(new RetryBudget(0.2))).toBe(10);
  });

  // [ratio, requests after the reserve is spent, retries they earn]
  it.each([
    [0.2, 4, 0],
    [0.2, 5, 1],
    [0.2, 50, 10],
    [0.1, 9, 0],
    [0.1, 10, 1], // 0.1 added ten times is 0.9999999999999999 in floating point
    [0.1, 30, 3],
    [0.125, 8, 1],
    [0.333, 3, 0],
    [0.333, 4, 1],
    [1, 7, 7],
  ])('ratio %d: %i requests earn %i retries', (ratio, requests, retries) => {
    const b = new RetryBudget(ratio);
    drain(b);
    deposits(b, requests);
    expect(drain(b)).toBe(retries);
  });

  it('a retry spends a whole token, so earning continues from what is left', () => {
    const b = new RetryBudget(0.5);
    drain(b);
    deposits(b, 3); // 1.5
    expect(b.withdraw()).toBe(true); // 0.5 left
    expect(b.withdraw()).toBe(false);
    b.deposit(); // 1
    expect(b.withdraw()).toBe(true);
    expect(b.withdraw()).toBe(false);
  });

  it('caps the savings at 100 retries', () => {
    const b = new RetryBudget(1);
    deposits(b, 1000);
    expect(drain(b)).toBe(100);
  });

  it('refill tops the reserve up to 10, never beyond', () => {
    const b = new RetryBudget(0.2);
    expect(b.withdraw()).toBe(true);
    expect(b.withdraw()).toBe(true);
    b.refill();
    expect(drain(b)).toBe(10);
    b.refill();
    b.refill(); // refills do not add up
    expect(drain(b)).toBe(10);
    deposits(b, 100); // 20 earned
    b.refill(); // above the reserve already: nothing added
    expect(drain(b)).toBe(20);
  });

  it('0% means no retries at all: no reserve, no refill, nothing earned', () => {
    const b = new RetryBudget(0);
    expect(b.withdraw()).toBe(false);
    b.refill();
    expect(b.withdraw()).toBe(false);
    deposits(b, 10_000);
    b.refill();
    expect(drain(b)).toBe(0);
  });
});
