import { describe, expect, it } from 'vitest';
import { neighbourMap, neighbourNorms, selectNeighbours } from './padim-neighbours.ts';
import { distanceOfWhitened } from './padim.ts';
import { createRandom } from './random.ts';

/** Whitened cells (cells x channels) of one part from rows of numbers. */
const part = (...cells: number[][]) => Float32Array.from(cells.flat());

describe('selectNeighbours', () => {
  it('starts nearest the mean and then takes the farthest part each time', () => {
    // One cell, two channels: the part at the origin, one near it, two far in different directions.
    const parts = [part([0.1, 0]), part([5, 0]), part([0, 0.05]), part([0, -3])];
    const { count, bank } = selectNeighbours(parts, 1, 2, 3);
    expect(count).toBe(3);
    // bank is channels x count per cell: column j is neighbour j.
    const column = (j: number) => [bank[j], bank[3 + j]].map((v) => Number(v?.toFixed(3)));
    expect([column(0), column(1), column(2)]).toEqual([
      [0, 0.05],
      [5, 0],
      [0, -3],
    ]);
  });

  it('keeps every part when there are fewer than asked, and chooses per cell', () => {
    const parts = [part([1], [0]), part([0], [2])];
    const { count, bank } = selectNeighbours(parts, 2, 1, 32);
    expect(count).toBe(2);
    expect(Array.from(bank)).toEqual([0, 1, 0, 2]);
    expect(() => selectNeighbours([], 1, 1, 4)).toThrow(RangeError);
  });
});

describe('neighbourMap', () => {
  it('is each cell squared distance to its nearest neighbour, zero for a kept part', () => {
    const random = createRandom(3);
    const cells = 4;
    const channels = 5;
    const parts = Array.from({ length: 12 }, () =>
      Float32Array.from({ length: cells * channels }, () => random() * 2 - 1),
    );
    const neighbours = selectNeighbours(parts, cells, channels, 6);
    const norms = neighbourNorms(neighbours, channels);
    const query = Float32Array.from({ length: cells * channels }, () => random() * 2 - 1);
    const map = neighbourMap(
      query,
      distanceOfWhitened(query, channels),
      neighbours,
      norms,
      channels,
    );
    for (let k = 0; k < cells; k++) {
      let best = Infinity;
      for (let j = 0; j < neighbours.count; j++) {
        let s = 0;
        for (let c = 0; c < channels; c++)
          s +=
            ((query[k * channels + c] as number) -
              (neighbours.bank[
                k * channels * neighbours.count + c * neighbours.count + j
              ] as number)) **
            2;
        best = Math.min(best, s);
      }
      expect(map[k]).toBeCloseTo(best, 5);
    }
    // A kept part's own cells are at distance zero (to float rounding).
    const kept = Float32Array.from({ length: cells * channels }, (_, i) => {
      const k = Math.floor(i / channels);
      const c = i % channels;
      return neighbours.bank[k * channels * neighbours.count + c * neighbours.count] as number;
    });
    const own = neighbourMap(kept, distanceOfWhitened(kept, channels), neighbours, norms, channels);
    for (const v of own) expect(Math.abs(v)).toBeLessThan(1e-5);
  });
});
