import { describe, expect, it } from 'vitest';
import { defaultFilterBank } from './filter-kernels.ts';
import { filterBankEnergies } from './filter-bank-reference.ts';

describe('defaultFilterBank', () => {
  it('has zero-sum kernels of one size whose separable terms equal the dense weights', () => {
    const bank = defaultFilterBank();
    expect(bank.map((f) => f.name)).toEqual([
      'laplacian',
      'sobel-x',
      'sobel-y',
      'dob-1-5',
      'dob-3-9',
      'line-0',
      'line-45',
      'line-90',
      'line-135',
    ]);
    for (const filter of bank) {
      expect(filter.size).toBe(9);
      expect(filter.weights).toHaveLength(81);
      expect(Math.abs(filter.weights.reduce((a, b) => a + b, 0))).toBeLessThan(1e-6);
      for (const term of filter.separable ?? []) {
        expect(term.vertical).toHaveLength(9);
        expect(term.horizontal).toHaveLength(9);
      }
      if (filter.separable === undefined) continue;
      for (let y = 0; y < 9; y++) {
        for (let x = 0; x < 9; x++) {
          const sum = filter.separable.reduce(
            (acc, t) => acc + (t.vertical[y] as number) * (t.horizontal[x] as number),
            0,
          );
          expect(filter.weights[y * 9 + x]).toBeCloseTo(sum, 6);
        }
      }
    }
    expect(() => defaultFilterBank(8)).toThrow(RangeError);
  });

  it('responds to a line only with the detector of its orientation, and not to flat input', () => {
    const size = 40;
    const params = {
      inputWidth: size,
      inputHeight: size,
      filters: defaultFilterBank(),
      poolSize: 8,
      poolStride: 4,
    };
    const flat = filterBankEnergies(new Float32Array(size * size).fill(0.7), params);
    expect(Math.max(...flat.data)).toBeLessThan(1e-5);
    const horizontal = new Float32Array(size * size);
    for (let x = 0; x < size; x++) horizontal[20 * size + x] = 1;
    const energies = filterBankEnergies(horizontal, params);
    const cells = energies.width * energies.height;
    const peak = (c: number): number =>
      Math.max(...energies.data.subarray(c * cells, (c + 1) * cells));
    // line-0 (index 5) beats line-90 (index 7); sobel-x (index 1) sees no vertical edges.
    expect(peak(5)).toBeGreaterThan(3 * peak(7));
    expect(peak(1)).toBeLessThan(1e-6);
    expect(peak(2)).toBeGreaterThan(0.1);
  });
});
