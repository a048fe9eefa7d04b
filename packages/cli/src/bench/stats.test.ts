import { describe, expect, it } from 'vitest';
import { median, percentiles } from './stats.ts';

describe('bench stats', () => {
  it('takes the middle sample, or the mean of the middle two, without rounding', () => {
    expect(median([])).toBe(0);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([1.0004, 4, 1, 2])).toBe(1.5002);
  });

  it('reports median and p99 rounded to 0.01', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 0.004);
    expect(percentiles(samples)).toEqual({ median: 50, p99: 99 });
    expect(percentiles([])).toEqual({ median: 0, p99: 0 });
  });
});
