// The weighted schedule that most algorithms read (src/balancer/schedule.ts).
import { describe, expect, it } from 'vitest';
import { smoothSchedule } from '../../../src/balancer/schedule.js';

describe('smooth weighted schedule', () => {
  it('interleaves 5:1:1 as nginx does', () => {
    expect(smoothSchedule([5, 1, 1]).map((i) => 'abc'[i]).join(' ')).toBe('a a b a c a a');
  });
  it.each([
    [[1, 1, 1], 3],
    [[3, 1], 4],
    [[2, 4, 6], 6],
    [[1000, 1], 1001],
  ])('weights %j give a cycle of %i with exact counts', (weights, length) => {
    const s = smoothSchedule(weights);
    expect(s).toHaveLength(length);
    const g = weights.reduce((a, b) => { while (b) [a, b] = [b, a % b]; return a; });
    weights.forEach((w, i) => expect(s.filter((x) => x === i)).toHaveLength(w / g));
  });
});
