import { describe, expect, it } from 'vitest';
import { chooseThreshold, quantile } from './threshold.ts';

describe('chooseThreshold', () => {
  it('puts the threshold in the gap of a perfect separation', () => {
    expect(chooseThreshold([1, 2, 3, 7, 8], [false, false, false, true, true])).toEqual({
      threshold: 5,
      rule: 'max-f1',
    });
  });

  it('maximizes F1 and prefers the larger threshold on ties', () => {
    // Descending: 6D 5D 4G 3D 1G. Calling 6,5,4,3 defects gives TP 3, FP 1: F1 6/7, the best;
    // the threshold sits between 3 and 1.
    expect(chooseThreshold([1, 3, 4, 5, 6], [false, true, false, true, true]).threshold).toBe(2);
    // Descending: 9D 8G 7G 6D 1G. Above 8.5: TP 1, FN 1 -> F1 2/3. Above 3.5: TP 2, FP 2 -> 2/3. Larger wins.
    expect(chooseThreshold([9, 8, 7, 6, 1], [true, false, false, true, false]).threshold).toBe(8.5);
  });

  it('uses a margin over the 99th percentile of good scores without defects', () => {
    const good = Array.from({ length: 101 }, (_, i) => i / 100);
    const choice = chooseThreshold(
      good,
      good.map(() => false),
    );
    expect(choice.rule).toBe('good-quantile');
    expect(choice.threshold).toBeCloseTo(0.99 * 1.1, 12);
  });

  it('interpolates quantiles', () => {
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(() => quantile([], 0.5)).toThrow(RangeError);
  });
});
