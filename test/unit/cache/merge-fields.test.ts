// A 304's fields replace the stored ones of the same names (RFC 9111 §4.3.4); the others and the
// stored status line stay.
import { describe, expect, it } from 'vitest';
import { mergeFields } from '../../../src/cache/phases.js';

describe('mergeFields', () => {
  it.each([
    ['200 OK\r\netag: "a"\r\ncontent-type: text/plain', '304 Not Modified\r\netag: "a"\r\nx-new: 1', '200 OK\r\ncontent-type: text/plain\r\netag: "a"\r\nx-new: 1'],
    ['200 OK\r\nset: 1\r\nset: 2\r\nkeep: k', '304 Not Modified\r\nset: 3', '200 OK\r\nkeep: k\r\nset: 3'],
    ['200 OK\r\na: 1', '304 Not Modified', '200 OK\r\na: 1'],
    ['200 OK', '304 Not Modified\r\ncache-control: max-age=5', '200 OK\r\ncache-control: max-age=5'],
  ])('%j + %j', (stored, update, expected) => {
    expect(mergeFields(stored, update)).toBe(expected);
  });
});
