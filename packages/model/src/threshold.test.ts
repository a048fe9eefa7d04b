import { describe, expect, it } from 'vitest';
import {
  chooseThreshold,
  goodQuantileThreshold,
  quantile,
  validationThreshold,
} from './threshold.ts';

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

describe('validationThreshold', () => {
  // Older data: good parts score 4-5.2, defects 8-9. The changed line: good 1-1.5, defects 3-3.5
  // (its defects score lower than the older good parts).
  const scores = [4, 4.2, 4.4, 4.6, 5, 5.2, 8, 9, 1, 1.5, 3, 3.5];
  const labels = [...Array<boolean>(6).fill(false), true, true, false, false, true, true];
  const recent = [...Array<boolean>(8).fill(false), true, true, true, true];

  it('takes the threshold from the recent images alone when they hold both labels', () => {
    // On the whole split the older images outvote the line: the best F1 sits between 8 and 5.2,
    // and every defect of the changed line would pass as good.
    expect(chooseThreshold(scores, labels).threshold).toBe(6.6);
    // The recent images alone put it in their own gap, between 3 and 1.5.
    expect(validationThreshold(scores, labels, recent)).toEqual({
      threshold: 2.25,
      rule: 'max-f1',
      recentImages: 4,
    });
  });

  it('uses the whole split when the recent images lack a label, or there are none', () => {
    const all = chooseThreshold(scores, labels);
    expect(
      validationThreshold(
        scores,
        labels,
        recent.map(() => false),
      ),
    ).toEqual(all);
    // Recent images, but no recent defect among them.
    const noRecentDefect = recent.map((r, k) => r && !labels[k]);
    expect(validationThreshold(scores, labels, noRecentDefect)).toEqual(all);
    // No defects at all: the good-score quantile, as before.
    const good = [1, 2, 3];
    expect(validationThreshold(good, [false, false, false], [true, true, true])).toEqual(
      goodQuantileThreshold(good),
    );
  });
});
