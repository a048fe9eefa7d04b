import { describe, expect, it } from 'vitest';
import { greyInputSpec } from '@linesight/protocol';
import { GOLDEN_INPUT_COUNT, goldenInputs, withinGoldenTolerance } from './golden-inputs.ts';

describe('withinGoldenTolerance', () => {
  it('is relative to the reference score at or above 1', () => {
    expect(withinGoldenTolerance(1000.9, 1000, 1e-3)).toBe(true);
    expect(withinGoldenTolerance(1001.1, 1000, 1e-3)).toBe(false);
    expect(withinGoldenTolerance(-1000.9, -1000, 1e-3)).toBe(true);
    expect(withinGoldenTolerance(-1001.1, -1000, 1e-3)).toBe(false);
  });

  it('is absolute below 1, so a score near zero is not held to a vanishing tolerance', () => {
    expect(withinGoldenTolerance(0.0009, 0, 1e-3)).toBe(true);
    expect(withinGoldenTolerance(0.0011, 0, 1e-3)).toBe(false);
    expect(withinGoldenTolerance(0.0109, 0.01, 1e-3)).toBe(true);
    expect(withinGoldenTolerance(-0.5011, -0.5, 1e-3)).toBe(false);
  });

  it('refuses a score that is not a number', () => {
    expect(withinGoldenTolerance(Number.NaN, 0.5, 1e-3)).toBe(false);
  });
});

describe('goldenInputs', () => {
  it('gives the same four inputs of the spec size every time', () => {
    const spec = greyInputSpec(8);
    const a = goldenInputs(spec);
    expect(a).toHaveLength(GOLDEN_INPUT_COUNT);
    for (const input of a) expect(input).toHaveLength(64);
    expect(goldenInputs(spec)).toEqual(a);
    expect(new Set(a.map((x) => x.join(','))).size).toBe(GOLDEN_INPUT_COUNT);
  });
});
