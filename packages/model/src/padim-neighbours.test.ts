import { describe, expect, it } from 'vitest';
import { neighbourMap, selectNeighbours } from './padim-neighbours.ts';
import { distanceOfWhitened } from './padim.ts';
import { createRandom } from './random.ts';

/** Cells x channels of one part from rows of numbers. */
const part = (...cells: number[][]) => Float32Array.from(cells.flat());
/** An identity whitening matrix per cell. */
const identity = (cells: number, channels: number) =>
  Float32Array.from({ length: cells * channels * channels }, (_, i) =>
    Math.floor(i / channels) % channels === i % channels ? 1 : 0,
  );

describe('selectNeighbours', () => {
  it('starts nearest the mean and then takes the farthest part each time', () => {
    // One cell, two channels: near the origin twice, two far in different directions.
    const parts = [part([0.1, 0]), part([5, 0]), part([0, 0.05]), part([0, -3])];
    const { count, projection, norms } = selectNeighbours(parts, identity(1, 2), 2, 3);
    expect(count).toBe(3);
    // With an identity whitening the projection's column j is neighbour j itself.
    const column = (j: number) =>
      [projection[j], projection[3 + j]].map((v) => Number(v?.toFixed(3)));
    expect([column(0), column(1), column(2)]).toEqual([
      [0, 0.05],
      [5, 0],
      [0, -3],
    ]);
    expect(Array.from(norms).map((v) => Number(v.toFixed(4)))).toEqual([0.0025, 25, 9]);
  });

  it('keeps every part when there are fewer than asked, and chooses per cell', () => {
    const parts = [part([1], [0]), part([0], [2])];
    const { count, projection } = selectNeighbours(parts, identity(2, 1), 1, 32);
    expect(count).toBe(2);
    expect(Array.from(projection)).toEqual([0, 1, 0, 2]);
    expect(() => selectNeighbours([], identity(1, 1), 1, 4)).toThrow(RangeError);
  });
});

describe('neighbourMap', () => {
  it('is each cell squared whitened distance to its nearest neighbour, zero for a kept part', () => {
    const random = createRandom(3);
    const cells = 4;
    const channels = 5;
    const whitening = Float32Array.from(
      { length: cells * channels * channels },
      () => random() - 0.5,
    );
    const whiten = (d: Float32Array) => {
      const z = new Float32Array(d.length);
      for (let k = 0; k < cells; k++)
        for (let j = 0; j < channels; j++) {
          let y = 0;
          for (let a = 0; a < channels; a++)
            y +=
              (d[k * channels + a] as number) *
              (whitening[(k * channels + a) * channels + j] as number);
          z[k * channels + j] = y;
        }
      return z;
    };
    const centred = Array.from({ length: 12 }, () =>
      Float32Array.from({ length: cells * channels }, () => random() * 2 - 1),
    );
    const whitened = centred.map(whiten);
    const neighbours = selectNeighbours(whitened, whitening, channels, 6);
    expect(neighbours.count).toBe(6);
    const mapOf = (d: Float32Array) =>
      neighbourMap(d, distanceOfWhitened(whiten(d), channels), neighbours, channels);
    // The kept parts per cell, chosen again here by the k-center rule, and the query's
    // squared whitened distance to the nearest of them.
    const query = Float32Array.from({ length: cells * channels }, () => random() * 2 - 1);
    const zq = whiten(query);
    const map = mapOf(query);
    const distance = (a: Float32Array, b: Float32Array, k: number) => {
      let s = 0;
      for (let c = 0; c < channels; c++)
        s += ((a[k * channels + c] as number) - (b[k * channels + c] as number)) ** 2;
      return s;
    };
    const origin = new Float32Array(cells * channels);
    for (let k = 0; k < cells; k++) {
      const kept = [
        whitened.reduce((best, z) =>
          distance(z, origin, k) < distance(best, origin, k) ? z : best,
        ),
      ];
      while (kept.length < 6) {
        const gap = (z: Float32Array) => Math.min(...kept.map((q) => distance(z, q, k)));
        kept.push(whitened.reduce((far, z) => (gap(z) > gap(far) ? z : far)));
      }
      const nearestKept = Math.min(...kept.map((z) => distance(zq, z, k)));
      expect(map[k]).toBeCloseTo(nearestKept, 4);
    }
    // Every part is at distance zero from itself where it was kept, and the part nearest the
    // mean is kept at every cell.
    const first = whitened
      .map((z, i) => ({ i, s: z.subarray(0, channels).reduce((a, v) => a + v * v, 0) }))
      .sort((a, b) => a.s - b.s)[0]!.i;
    const own = mapOf(centred[first]!);
    expect(Math.abs(own[0] as number)).toBeLessThan(1e-5);
  });
});
