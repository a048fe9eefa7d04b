import { describe, expect, it } from 'vitest';
import { fixedHistogram } from './histogram.ts';

describe('fixedHistogram', () => {
  it('bins values in equal bins and clamps outliers into the end bins', () => {
    const h = fixedHistogram([-5, 0, 0.5, 1, 1.99, 2, 3.9, 4, 99], 0, 4, 4);
    expect(h.edges).toEqual([0, 1, 2, 3, 4]);
    expect(h.counts).toEqual([3, 2, 1, 3]);
    expect(() => fixedHistogram([], 1, 1, 4)).toThrow(RangeError);
    expect(() => fixedHistogram([], 0, 1, 0)).toThrow(RangeError);
  });
});
