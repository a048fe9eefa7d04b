import { describe, expect, it } from 'vitest';
import {
  binnedMedian,
  binomialTest,
  chiSquareSurvival,
  effectiveFrames,
  kolmogorovSurvival,
  ks,
  logGamma,
  normalSurvival,
  psi,
  rateShiftTest,
} from './drift-statistics.ts';

// A small seeded generator (mulberry32) so the null-hypothesis checks are reproducible.
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function draw(shares: readonly number[], n: number, next: () => number): number[] {
  const counts = shares.map(() => 0);
  for (let k = 0; k < n; k++) {
    let u = next();
    let i = 0;
    while (i < shares.length - 1 && u >= (shares[i] as number)) u -= shares[i++] as number;
    counts[i] = (counts[i] as number) + 1;
  }
  return counts;
}

describe('distribution functions', () => {
  it('match tabulated values', () => {
    expect(logGamma(5)).toBeCloseTo(Math.log(24), 10);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 10);
    expect(chiSquareSurvival(3.841459, 1)).toBeCloseTo(0.05, 5);
    expect(chiSquareSurvival(18.307038, 10)).toBeCloseTo(0.05, 5);
    expect(chiSquareSurvival(37.697, 15)).toBeCloseTo(0.001, 4);
    expect(chiSquareSurvival(0, 3)).toBe(1);
    expect(normalSurvival(1.959964)).toBeCloseTo(0.025, 5);
    expect(kolmogorovSurvival(1.358)).toBeCloseTo(0.05, 3);
    expect(kolmogorovSurvival(0.1)).toBe(1);
    expect(effectiveFrames(100, 100)).toBe(50);
    expect(effectiveFrames(0, 100)).toBe(0);
  });
});

describe('psi', () => {
  it('is 0 for the same shares and the textbook value for a 60/40 split of a 50/50 reference', () => {
    expect(psi([100, 200, 0, 300], [200, 400, 0, 600]).value).toBeCloseTo(0, 4);
    const shifted = psi([50_000, 50_000], [60_000, 40_000]);
    // (0.6 - 0.5) ln(0.6/0.5) + (0.4 - 0.5) ln(0.4/0.5)
    expect(shifted.value).toBeCloseTo(0.1 * Math.log(1.2) + 0.1 * Math.log(1.25), 4);
    expect(shifted.pValue).toBeLessThan(1e-9);
  });

  it('stays finite when the live sample fills a bin the reference never saw', () => {
    const r = psi([500, 500, 0, 0], [0, 0, 500, 500]);
    expect(Number.isFinite(r.value)).toBe(true);
    expect(r.value).toBeGreaterThan(5);
    expect(r.pValue).toBeLessThan(1e-9);
  });

  it('answers 0 with p = 1 on an empty side', () => {
    expect(psi([0, 0], [3, 4])).toEqual({ value: 0, pValue: 1 });
  });

  it('seldom calls noise between two samples of one distribution significant', () => {
    const shares = [0.05, 0.15, 0.3, 0.3, 0.15, 0.05];
    const next = random(42);
    let falseAlarms = 0;
    let above01 = 0;
    for (let trial = 0; trial < 300; trial++) {
      const reference = draw(shares, 100, next);
      const live = draw(shares, 600, next);
      const r = psi(reference, live);
      if (r.value >= 0.1) above01++;
      if (r.value >= 0.1 && r.pValue < 1e-3) falseAlarms++;
    }
    // A 100-image reference alone puts PSI above 0.1 now and then; the p-value gate keeps it quiet.
    expect(above01).toBeGreaterThan(0);
    expect(falseAlarms).toBeLessThanOrEqual(2);
  });

  it('rejects histograms of different bins', () => {
    expect(() => psi([1, 2], [1, 2, 3])).toThrow(RangeError);
  });
});

describe('ks', () => {
  it('is the largest gap of the cumulative shares', () => {
    const r = ks([25, 25, 25, 25], [0, 50, 25, 25]);
    expect(r.value).toBeCloseTo(0.25, 9);
    expect(ks([10, 10], [20, 20]).value).toBe(0);
  });

  it('is significant for a one-bin shift of a large sample, not for a small one', () => {
    const reference = [100, 300, 400, 200, 0];
    const shifted = [0, 100, 300, 400, 200];
    expect(
      ks(
        reference,
        shifted.map((c) => c * 5),
      ).pValue,
    ).toBeLessThan(1e-6);
    expect(ks(reference, [0, 1, 1, 1, 0]).pValue).toBeGreaterThan(0.05);
  });
});

describe('binomialTest', () => {
  it('is exact for small samples', () => {
    // R: binom.test(7, 10, 0.5)$p.value = 0.34375
    expect(binomialTest(7, 10, 0.5).pValue).toBeCloseTo(0.34375, 6);
    // P(X = 0) = 0.9^20 = 0.1216; outcomes no likelier: X = 0 and X >= 4, 0.1216 + 0.1330
    expect(binomialTest(0, 20, 0.1).pValue).toBeCloseTo(0.2545, 3);
  });

  it('uses the normal approximation for large samples', () => {
    const r = binomialTest(600, 1000, 0.5);
    expect(r.observedRate).toBe(0.6);
    expect(r.shift).toBeCloseTo(0.1, 9);
    expect(r.pValue).toBeLessThan(1e-9);
    expect(binomialTest(505, 1000, 0.5).pValue).toBeGreaterThan(0.7);
  });

  it('handles degenerate rates and no trials', () => {
    expect(binomialTest(0, 0, 0.1).pValue).toBe(1);
    expect(binomialTest(0, 50, 0).pValue).toBe(1);
    expect(binomialTest(1, 50, 0).pValue).toBe(0);
  });
});

describe('binnedMedian', () => {
  it('interpolates inside the median bin', () => {
    expect(binnedMedian([1, 2, 4], [0, 10, 0, 0])).toBeCloseTo(1.5, 9);
    expect(binnedMedian([1, 2, 4], [0, 0, 0, 5])).toBe(4);
    expect(binnedMedian([1, 2], [0, 0, 0])).toBeUndefined();
  });
});

describe('rateShiftTest', () => {
  it('does not take a rate measured on a few images as exact', () => {
    // 35 % expected from 20 validation images; 25 % observed over 6000 frames.
    expect(binomialTest(1500, 6000, 0.35).pValue).toBeLessThan(1e-9);
    expect(rateShiftTest(1500, 6000, 0.35, 20).pValue).toBeGreaterThan(0.2);
    // The same shift against a rate measured on 2000 images is significant.
    expect(rateShiftTest(1500, 6000, 0.35, 2000).pValue).toBeLessThan(1e-9);
    // A reference far larger than the sample: the exact binomial test.
    expect(rateShiftTest(7, 10, 0.5, 10_000).pValue).toBeCloseTo(0.34375, 6);
  });
});
