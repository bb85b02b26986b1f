// The sticky / hash-key cookie reader and the opaque sticky id: whole-name matches only, quoted
// values, absent cookies, and ids that are stable and do not show the backend's address.
import { describe, expect, it } from 'vitest';
import { cookieValue, stickyId } from '../../../src/proxy/affinity.js';

describe('cookieValue', () => {
  it.each([
    ['lb=abc', 'lb', 'abc'],
    ['a=1; lb=abc; b=2', 'lb', 'abc'],
    ['a=1;lb=abc', 'lb', 'abc'],
    ['xlb=1; lb=two', 'lb', 'two'], // "xlb" is another cookie
    ['lbx=1; lb=two', 'lb', 'two'],
    ['lb="quoted"', 'lb', 'quoted'],
    ['lb=', 'lb', ''],
    ['a=lb=1', 'lb', null], // inside another cookie's value
    ['a=1', 'lb', null],
    ['', 'lb', null],
    ['lb', 'lb', null],
  ])('%j, %s -> %j', (header, name, expected) => {
    expect(cookieValue(header, name)).toBe(expected);
  });
});

describe('stickyId', () => {
  it('is stable, differs per backend and pool, and does not contain the address', () => {
    const a = stickyId('web', 'http://127.0.0.1:3001');
    expect(stickyId('web', 'http://127.0.0.1:3001')).toBe(a);
    expect(stickyId('web', 'http://127.0.0.1:3002')).not.toBe(a);
    expect(stickyId('api', 'http://127.0.0.1:3001')).not.toBe(a);
    expect(a).toMatch(/^[0-9a-z]+$/);
    expect(a).not.toContain('3001');
  });
});
