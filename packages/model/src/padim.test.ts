import { describe, expect, it } from 'vitest';
import { fitPadim, padimFeatures, padimGrid, padimMap, padimScore } from './padim.ts';
import { createRandom } from './random.ts';

describe('padimFeatures', () => {
  it('averages 2x2 cells and subtracts each channel mean over the part', () => {
    // 2 channels on a 4x4 grid: channel 0 counts up, channel 1 is constant.
    const grid = 4;
    const f = new Float32Array(2 * grid * grid);
    for (let i = 0; i < grid * grid; i++) {
      f[i] = i;
      f[grid * grid + i] = 7;
    }
    expect(padimGrid(grid)).toBe(2);
    const out = padimFeatures(f, 2, grid);
    // Pooled channel 0: [2.5, 4.5, 10.5, 12.5], mean 7.5; layout cells x channels.
    expect(Array.from(out)).toEqual([-5, 0, -3, 0, 3, 0, 5, 0]);
  });

  it('pools the peak channels by their maximum', () => {
    const grid = 4;
    const f = new Float32Array(2 * grid * grid);
    for (let i = 0; i < grid * grid; i++) {
      f[i] = i;
      f[grid * grid + i] = i === 5 ? 9 : 1;
    }
    const out = padimFeatures(f, 2, grid, { first: 1, count: 1 });
    // Channel 0 averaged as before; channel 1 maxima [9, 1, 1, 1], mean 3.
    expect(Array.from(out)).toEqual([-5, 6, -3, -2, 3, -2, 5, -2]);
  });
});

describe('fitPadim', () => {
  const channels = 3;
  const grid = 2;
  const cells = grid * grid;
  const random = createRandom(5);
  const gauss = () => {
    // Box-Muller from the seeded generator.
    const u = Math.max(random(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  // Correlated good features: channel 1 follows channel 0, channel 2 is independent.
  const good = Array.from({ length: 400 }, () => {
    const f = new Float32Array(cells * channels);
    for (let k = 0; k < cells; k++) {
      const a = gauss();
      f[k * channels] = a;
      f[k * channels + 1] = a + 0.1 * gauss();
      f[k * channels + 2] = gauss();
    }
    return f;
  });

  it('gives good parts about one unit per channel and flags a broken correlation at its cell', () => {
    const params = fitPadim(good, channels, grid);
    const typical = good.slice(0, 100).map((f) => padimMap(f, params));
    const mean = typical.flatMap((m) => Array.from(m)).reduce((a, v) => a + v, 0) / (100 * cells);
    expect(mean).toBeGreaterThan(0.5);
    expect(mean).toBeLessThan(1.5);
    // Channel 1 against channel 0 at cell 2: each value is ordinary, their pairing is not.
    const odd = new Float32Array(cells * channels);
    odd[2 * channels] = 1;
    odd[2 * channels + 1] = -1;
    const map = padimMap(odd, params);
    expect(padimScore(map)).toBe(map[2]);
    const [first, second] = Array.from(map).sort((a, b) => b - a) as [number, number];
    expect(padimScore(map, 2)).toBeCloseTo((first + second) / 2, 6);
    expect(padimScore(map, 99)).toBeCloseTo(Array.from(map).reduce((a, v) => a + v, 0) / 4, 6);
    // Minus the median cell, the third largest of four.
    const third = Array.from(map).sort((a, b) => b - a)[2] as number;
    expect(padimScore(map, 2, true)).toBeCloseTo((first + second) / 2 - third, 6);
    expect(padimScore(map, 1, true)).toBeCloseTo(first - third, 6);
    expect(map[2]).toBeGreaterThan(5 * Math.max(map[0] as number, map[1] as number));
  });

  it('stays finite with fewer images than channels, and is deterministic', () => {
    const few = good.slice(0, 2);
    const a = fitPadim(few, channels, grid);
    const b = fitPadim(few, channels, grid);
    expect(a.whitening.every(Number.isFinite)).toBe(true);
    expect(Buffer.from(a.whitening.buffer).equals(Buffer.from(b.whitening.buffer))).toBe(true);
    expect(() => fitPadim(good.slice(0, 1), channels, grid)).toThrow(/at least 2/);
  });
});
