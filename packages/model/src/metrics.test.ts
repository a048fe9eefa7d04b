import { describe, expect, it } from 'vitest';
import { auroc, averagePrecision, computeMetrics } from './metrics.ts';

describe('computeMetrics', () => {
  it('computes a perfect separation', () => {
    const m = computeMetrics([0.1, 0.2, 0.8, 0.9], [false, false, true, true], 0.5);
    expect(m).toMatchObject({
      images: 4,
      good: 2,
      defect: 2,
      auroc: 1,
      ap: 1,
      precision: 1,
      recall: 1,
      f1: 1,
      threshold: 0.5,
    });
  });

  it('matches hand-computed values with an overlap', () => {
    // Sorted descending: 0.9 D, 0.8 G, 0.7 D, 0.4 G, 0.3 D, 0.1 G.
    const scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.1];
    const labels = [true, false, true, false, true, false];
    // Pairs (defect > good): 0.9 beats 3, 0.7 beats 2, 0.3 beats 1 -> 6 of 9.
    expect(auroc(scores, labels)).toBeCloseTo(6 / 9, 12);
    // AP = 1/3 * 1/1 + 1/3 * 2/3 + 1/3 * 3/5.
    expect(averagePrecision(scores, labels)).toBeCloseTo((1 + 2 / 3 + 3 / 5) / 3, 12);
    const m = computeMetrics(scores, labels, 0.5);
    // Called: 0.9 D, 0.8 G, 0.7 D -> TP 2, FP 1, FN 1, TN 2.
    expect(m).toMatchObject({
      truePositives: 2,
      falsePositives: 1,
      falseNegatives: 1,
      trueNegatives: 2,
    });
    expect(m.precision).toBeCloseTo(2 / 3, 12);
    expect(m.recall).toBeCloseTo(2 / 3, 12);
    expect(m.f1).toBeCloseTo(2 / 3, 12);
  });

  it('averages tied ranks and enters tied scores together', () => {
    // One defect and one good share 0.5; another good is lower, another defect higher.
    const scores = [0.5, 0.5, 0.2, 0.9];
    const labels = [true, false, false, true];
    // Pairs: 0.5D vs 0.5G = 0.5, 0.5D vs 0.2G = 1, 0.9D vs both = 2 -> 3.5 / 4.
    expect(auroc(scores, labels)).toBeCloseTo(3.5 / 4, 12);
    // Threshold 0.9: recall 1/2, precision 1. Threshold 0.5: recall 1, precision 2/3.
    expect(averagePrecision(scores, labels)).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12);
    expect(auroc([1, 1, 1, 1], [true, false, true, false])).toBe(0.5);
  });

  it('counts a score equal to the threshold as a defect', () => {
    const m = computeMetrics([0.5, 0.4], [true, false], 0.5);
    expect(m.truePositives).toBe(1);
    expect(m.falsePositives).toBe(0);
  });

  it('reports null where a metric is undefined', () => {
    const onlyGood = computeMetrics([0.1, 0.7], [false, false], 0.5);
    expect(onlyGood).toMatchObject({
      auroc: null,
      ap: null,
      recall: null,
      precision: 0,
      f1: 0,
      falsePositives: 1,
    });
    const nothingCalled = computeMetrics([0.1, 0.2], [false, false], 0.5);
    expect(nothingCalled).toMatchObject({ precision: null, f1: null });
    const missedAll = computeMetrics([0.1, 0.2], [true, false], 0.5);
    expect(missedAll).toMatchObject({ precision: null, recall: 0, f1: 0, auroc: 0, ap: 0.5 });
    expect(computeMetrics([], [], 1)).toMatchObject({ images: 0, auroc: null, ap: null, f1: null });
    expect(() => computeMetrics([1], [], 1)).toThrow(RangeError);
  });
});
