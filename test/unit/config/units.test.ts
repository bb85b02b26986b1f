// Table tests for src/config/units.ts: durations and sizes, values and error messages.
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseSize } from '../../../src/config/units.js';

describe('parseDuration', () => {
  const good: Array<[unknown, number]> = [
    ['500ms', 500],
    ['2s', 2000],
    ['1m', 60_000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['0.5m', 30_000],
    ['1h', 3_600_000],
    ['1.5h', 5_400_000],
    ['0.25h', 900_000],
    ['0h', 0],
    ['2 h', 7_200_000],
    ['0s', 0],
    ['10 ms', 10],
    [' 3s ', 3000],
  ];
  it.each(good)('%j -> %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  const bad: Array<[unknown, string]> = [
    [500, 'needs a unit: ms, s, m or h (e.g. "500ms" or "500s")'],
    ['500', 'needs a unit: ms, s, m or h (got string "500")'],
    ['2d', 'unknown duration unit "d" in "2d": use ms, s, m or h'],
    ['2S', 'unknown duration unit "S"'],
    ['2H', 'unknown duration unit "H"'],
    ['1hr', 'unknown duration unit "hr"'],
    ['0.0000001h', 'not a whole number of milliseconds'],
    ['9999999999999h', 'too large'],
    ['0.5ms', 'not a whole number of milliseconds'],
    ['-1s', 'expected a duration'],
    ['s', 'expected a duration'],
    ['', 'expected a duration'],
    ['1.s', 'expected a duration'],
    [true, 'got boolean true'],
    [null, 'got null'],
    ['99999999999999999999m', 'too large'],
  ];
  it.each(bad)('%j is rejected with "%s"', (input, message) => {
    const r = parseDuration(input);
    expect(typeof r).toBe('string');
    expect(r).toContain(message);
  });
});

describe('parseSize', () => {
  const good: Array<[unknown, number]> = [
    ['100b', 100],
    ['512kb', 512 * 1024],
    ['10mb', 10 * 1024 * 1024],
    ['1gb', 1024 ** 3],
    ['10MB', 10 * 1024 * 1024],
    ['2Kb', 2048],
    ['1.5mb', 1.5 * 1024 * 1024],
    ['4096', 4096],
    [4096, 4096],
    [0, 0],
    ['0kb', 0],
    ['10 mb', 10 * 1024 * 1024],
  ];
  it.each(good)('%j -> %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  const bad: Array<[unknown, string]> = [
    [-1, 'whole number of bytes >= 0'],
    [1.5, 'whole number of bytes >= 0'],
    ['-1mb', 'expected a size'],
    ['10xb', 'unknown size unit "xb"'],
    ['10m', 'unknown size unit "m"'],
    ['1.5b', 'not a whole number of bytes'],
    ['mb', 'expected a size'],
    [false, 'got boolean false'],
    ['99999999999999gb', 'too large'],
  ];
  it.each(bad)('%j is rejected with "%s"', (input, message) => {
    const r = parseSize(input);
    expect(typeof r).toBe('string');
    expect(r).toContain(message);
  });
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [2000, '2s'],
    [60_000, '1m'],
    [90_000, '90s'],
    [1500, '1500ms'],
    [0, '0ms'],
    [300_000, '5m'],
    [3_600_000, '60m'],
  ];
  it.each(cases)('%d ms -> %s, which parseDuration reads back', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});
