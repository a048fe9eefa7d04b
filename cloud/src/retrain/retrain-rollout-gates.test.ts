import { describe, expect, it } from 'vitest';
import { DEFAULT_SHADOW_MIN_AGREEMENT } from '../rollouts/rollout-types.ts';
import {
  retrainRolloutGates,
  verdictAgreement,
  wilsonLowerBound,
} from './retrain-rollout-gates.ts';

describe('wilsonLowerBound', () => {
  it('lies below the measured share by a margin that shrinks with the images', () => {
    expect(wilsonLowerBound(0.6, 10, 2)).toBeCloseTo(0.30801, 4);
    expect(wilsonLowerBound(0.6, 1000, 2)).toBeCloseTo(0.5687, 3);
    // A perfect record on a few images is weak evidence; on many it is strong.
    expect(wilsonLowerBound(1, 10, 2)).toBeCloseTo(10 / 14, 10);
    expect(wilsonLowerBound(1, 400, 2)).toBeCloseTo(400 / 404, 10);
    expect(wilsonLowerBound(0, 10, 2)).toBe(0);
    expect(wilsonLowerBound(0.5, 0, 2)).toBe(0);
  });
});

describe('verdictAgreement', () => {
  it('compares each model’s verdict at its own threshold, image by image', () => {
    // Champion threshold 0.5, challenger 2: verdicts (d = defect) d/d, g/d, g/g, d/g.
    expect(verdictAgreement([0.9, 0.1, 0.2, 0.6], 0.5, [3, 2, 1, 1.5], 2)).toBe(0.5);
    // A score at the threshold is a defect, as on the device.
    expect(verdictAgreement([0.5], 0.5, [2], 2)).toBe(1);
    expect(verdictAgreement([], 0.5, [], 2)).toBeNull();
    expect(() => verdictAgreement([1], 0.5, [], 2)).toThrow(RangeError);
  });
});

describe('retrainRolloutGates', () => {
  it('sets the shadow limit to the lower bound of the held-out agreement', () => {
    expect(retrainRolloutGates(0.6, 10)).toEqual({
      minAgreement: 0.308,
      maxDefectRateChange: 0.692,
    });
    // 8 of 14 held-out verdicts agree: what a drifted champion against its fix looks like.
    expect(retrainRolloutGates(8 / 14, 14).minAgreement).toBe(0.3217);
  });

  it('is never stricter than the rollout defaults', () => {
    expect(retrainRolloutGates(1, 10_000)).toEqual({
      minAgreement: DEFAULT_SHADOW_MIN_AGREEMENT,
      maxDefectRateChange: 0.2,
    });
    expect(retrainRolloutGates(0.95, 200).maxDefectRateChange).toBe(0.2);
    for (const n of [5, 14, 60, 1000])
      for (const a of [0, 0.3, 0.7, 0.95, 1]) {
        const g = retrainRolloutGates(a, n);
        expect(g.minAgreement).toBeLessThanOrEqual(Math.min(a, DEFAULT_SHADOW_MIN_AGREEMENT));
        expect(g.maxDefectRateChange).toBeGreaterThanOrEqual(0.2);
        expect(g.maxDefectRateChange).toBeCloseTo(Math.max(0.2, 1 - g.minAgreement), 4);
      }
  });

  it('keeps the defaults without a measured agreement', () => {
    const defaults = { minAgreement: 0.9, maxDefectRateChange: 0.2 };
    expect(retrainRolloutGates(null, 10)).toEqual(defaults);
    expect(retrainRolloutGates(undefined, 10)).toEqual(defaults);
    expect(retrainRolloutGates(0.5, 0)).toEqual(defaults);
  });
});
