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

  it('accepts a score exactly at the tolerance', () => {
    expect(withinGoldenTolerance(6, 4, 0.5)).toBe(true);
    expect(withinGoldenTolerance(2, 4, 0.5)).toBe(true);
    expect(withinGoldenTolerance(0.5, 0, 0.5)).toBe(true);
    expect(withinGoldenTolerance(6.001, 4, 0.5)).toBe(false);
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

describe('goldenInputs values', () => {
  // A cloud signs scores on these inputs and devices running other releases reproduce them:
  // the values are a protocol, pinned here, not a detail.
  const spec = {
    ...greyInputSpec(10, 8),
    channels: 3 as const,
    mean: [0, 0, 0],
    std: [1, 1, 1],
  };

  it('are the mean image, a flat 1, xorshift32 noise in [-1, 1) and a diagonal gradient', () => {
    const [zero, one, noise, gradient] = goldenInputs(spec);
    for (const input of [zero, one, noise, gradient]) expect(input).toHaveLength(240);
    expect(zero?.every((v) => v === 0)).toBe(true);
    expect(one?.every((v) => v === 1)).toBe(true);
    expect([...(noise as Float32Array).subarray(0, 4)]).toEqual([
      0.7589328289031982, 0.09065111726522446, -0.21186213195323944, -0.9992897510528564,
    ]);
    expect((noise as Float32Array).reduce((a, b) => a + b, 0)).toBeCloseTo(11.774921271950006, 12);
    expect(noise?.every((v) => v >= -1 && v < 1)).toBe(true);
    // Every channel plane holds the same gradient: -1 at the top left, +1 at the bottom right.
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 10; x++)
          expect(gradient?.[(c * 8 + y) * 10 + x], `c${c} y${y} x${x}`).toBeCloseTo(
            ((x + y) / 16) * 2 - 1,
            6,
          );
      }
    }
  });
});
