import { describe, expect, it } from 'vitest';
import { OnnxModel, type ModelContract } from '@linesight/vision';
import { GraphBuilder, encodeModel, intsAttr, intAttr } from './onnx-graph.ts';
import { smoothMap, smoothMapGraph } from './padim-map.ts';
import { createRandom } from './random.ts';

const contract = (side: number): ModelContract => ({
  schema: 'linesight.model/v1',
  kind: 'test',
  inputSpec: {
    inputName: 'x',
    width: side,
    height: side,
    channels: 1,
    layout: 'NCHW',
    resize: 'fill',
    scale: 1,
    mean: [0],
    std: [1],
  },
  outputs: { score: 'score', map: 'map' },
  threshold: 1,
});

/** A graph whose input is a map and whose outputs are smoothMapGraph of it and its maximum. */
function smoothingModel(grid: number, passes: number, to: number): Uint8Array {
  const g = new GraphBuilder('smooth');
  const x = g.input('x', [1, 1, grid, grid]);
  const map = smoothMapGraph(g, x, grid, passes, to, 'map');
  g.op('ReduceMax', [map], [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)], 'score');
  g.output('score', [1]);
  g.output('map', [1, 1, to, to]);
  return encodeModel(g.build(), contract(grid));
}

describe('smoothMap', () => {
  it('keeps a flat map flat and a blurred impulse its mass', () => {
    expect([...smoothMap(new Float32Array(16).fill(3), 4, 2, 8)].every((v) => v === 3)).toBe(true);
    const impulse = new Float32Array(49);
    impulse[24] = 16;
    const blurred = smoothMap(impulse, 7, 1, 7);
    expect([...blurred].reduce((a, b) => a + b, 0)).toBeCloseTo(16, 5);
    // The binomial kernel: centre 4/16, sides 2/16, corners 1/16 of the impulse.
    expect([blurred[24], blurred[23], blurred[16]]).toEqual([4, 2, 1]);
  });

  it('upsamples bilinearly with half-pixel centres and clamped edges', () => {
    // A 2x2 map [0 4; 8 12] to 4x4: rows are clamped at the edges, 1/4 and 3/4 in between.
    const up = smoothMap(Float32Array.of(0, 4, 8, 12), 2, 0, 4);
    expect([...up.subarray(0, 4)]).toEqual([0, 1, 3, 4]);
    expect([...up.subarray(4, 8)]).toEqual([2, 3, 5, 6]);
    expect([...up.subarray(12, 16)]).toEqual([8, 9, 11, 12]);
    expect(() => smoothMap(new Float32Array(4), 2, 0, 3)).toThrow(RangeError);
  });

  it('matches ONNX Runtime (Pad edge + Conv passes, Resize linear)', async () => {
    const random = createRandom(3);
    for (const [grid, passes, to] of [
      [8, 2, 16],
      [8, 0, 16],
      [9, 3, 9],
    ] as const) {
      const map = Float32Array.from({ length: grid * grid }, () => random() * 10);
      const model = await OnnxModel.load(smoothingModel(grid, passes, to));
      try {
        const out = await model.run(map);
        const reference = smoothMap(map, grid, passes, to);
        expect(out.map?.width).toBe(to);
        let worst = 0;
        for (let i = 0; i < reference.length; i++)
          worst = Math.max(
            worst,
            Math.abs((out.map?.data[i] as number) - (reference[i] as number)),
          );
        expect(worst).toBeLessThan(1e-5);
      } finally {
        await model.close();
      }
    }
  });
});
