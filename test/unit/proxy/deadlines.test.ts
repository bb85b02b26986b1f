// The worker's deadline list: due requests are told once, oldest first, and only once; an
// unwatched one never; callbacks that unwatch or watch others mid-expiry are safe.
import { describe, expect, it } from 'vitest';
import { Deadlines, type Expiring } from '../../../src/proxy/deadlines.js';

function request(name: string, deadline: number, told: string[], onDeadline?: () => void): Expiring {
  return {
    deadline,
    watchPrev: null,
    watchNext: null,
    onDeadline: () => {
      told.push(name);
      onDeadline?.();
    },
  };
}

describe('Deadlines', () => {
  it('tells due requests in the order they were watched, once', () => {
    const told: string[] = [];
    const d = new Deadlines();
    const [a, b, c, e] = [request('a', 30, told), request('b', 10, told), request('c', 50, told), request('e', 20, told)];
    for (const r of [a, b, c, e]) d.watch(r!);
    d.expire(25);
    expect(told).toEqual(['b', 'e']);
    d.expire(25);
    expect(told).toEqual(['b', 'e']);
    d.expire(100);
    expect(told).toEqual(['b', 'e', 'a', 'c']);
  });

  it('never tells an unwatched request, and a second watch keeps the first place', () => {
    const told: string[] = [];
    const d = new Deadlines();
    const a = request('a', 10, told);
    const b = request('b', 10, told);
    d.watch(a);
    d.watch(b);
    d.watch(a);
    d.unwatch(b);
    d.unwatch(b);
    d.expire(10);
    expect(told).toEqual(['a']);
    expect(a.watchPrev).toBeNull();
  });

  it('a callback may unwatch the next due request or watch a new one', () => {
    const told: string[] = [];
    const d = new Deadlines();
    const b = request('b', 10, told);
    const late = request('late', 10, told);
    const a = request('a', 10, told, () => {
      d.unwatch(b);
      d.watch(late);
    });
    const c = request('c', 10, told);
    for (const r of [a, b, c]) d.watch(r);
    d.expire(10);
    expect(told).toEqual(['a', 'c', 'late']);
  });

  it('a request watched again after expiry is told again when due', () => {
    const told: string[] = [];
    const d = new Deadlines();
    const a = request('a', 10, told);
    d.watch(a);
    d.expire(10);
    a.deadline = 20;
    d.watch(a);
    d.expire(15);
    d.expire(20);
    expect(told).toEqual(['a', 'a']);
  });
});
