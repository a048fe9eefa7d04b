import { describe, expect, it } from 'vitest';
import { OnnxModel } from '@linesight/vision';
import { greyInputSpec } from '@linesight/protocol';
import type { CellHead } from './cell-head.ts';
import { pyramidModelForward } from './defect-model.ts';
import {
  checkGeometry,
  featureChannels,
  featureNames,
  gridSide,
  normalizeImage,
  pyramidFeatures,
  pyramidKernels,
  type PyramidGeometry,
} from './pyramid-features.ts';
import { exportPyramidModelOnnx } from './pyramid-graph.ts';
import { createRandom } from './random.ts';

describe('pyramid features', () => {
  it('has zero-sum 5x5 kernels and consistent channel names', () => {
    const kernels = pyramidKernels();
    expect(kernels).toHaveLength(8);
    for (const k of kernels) {
      expect(k.weights).toHaveLength(25);
      expect(Math.abs(k.weights.reduce((a, b) => a + b, 0))).toBeLessThan(1e-6);
    }
    const geometry: PyramidGeometry = { size: 64, levels: 3, kernels, maxPoolLevels: 2 };
    expect(gridSide(geometry)).toBe(16);
    expect(featureChannels(geometry)).toBe(5 * 16 + 1);
    expect(featureNames(geometry)).toHaveLength(featureChannels(geometry));
    expect(() => checkGeometry({ size: 60, levels: 4, kernels })).toThrow(RangeError);
  });

  it('ignores brightness and gain changes (per-image normalization)', () => {
    const random = createRandom(1);
    const image = Float32Array.from({ length: 64 * 64 }, () => 0.3 + 0.2 * random());
    const brighter = image.map((v) => 0.1 + 1.5 * v);
    const geometry: PyramidGeometry = {
      size: 64,
      levels: 3,
      kernels: pyramidKernels(),
      maxPoolLevels: 1,
    };
    const a = pyramidFeatures(image, geometry).data;
    const b = pyramidFeatures(brighter, geometry).data;
    let worst = 0;
    for (let i = 0; i < a.length; i++)
      worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
    // Not exact: the variance floor keeps flat frames finite.
    expect(worst).toBeLessThan(0.02);
    const n = normalizeImage(image);
    expect(Math.abs(n.reduce((s, v) => s + v, 0) / n.length)).toBeLessThan(1e-5);
  });

  it('adds each channel relative to its mean over the part when asked', () => {
    const random = createRandom(3);
    const image = Float32Array.from({ length: 64 * 64 }, () => random());
    const plain: PyramidGeometry = { size: 64, levels: 3, kernels: pyramidKernels() };
    const relative: PyramidGeometry = { ...plain, relative: true };
    const base = featureChannels(plain);
    expect(featureChannels(relative)).toBe(2 * base);
    expect(featureNames(relative).slice(base)).toEqual(featureNames(plain).map((n) => `${n}-rel`));
    const a = pyramidFeatures(image, plain).data;
    const b = pyramidFeatures(image, relative).data;
    const cells = gridSide(plain) ** 2;
    expect(b.subarray(0, a.length)).toEqual(a);
    for (let c = 0; c < base; c++) {
      const rel = b.subarray((base + c) * cells, (base + c + 1) * cells);
      const mean = rel.reduce((s, v) => s + v, 0) / cells;
      expect(Math.abs(mean)).toBeLessThan(1e-4);
      // Same shape as the base channel, shifted by its mean.
      const shift = (a[c * cells] as number) - (rel[0] as number);
      expect(Math.abs((a[c * cells + 5] as number) - (rel[5] as number) - shift)).toBeLessThan(
        1e-5,
      );
    }
  });

  it('matches ONNX Runtime for a random head, with and without max-pooled levels, relative channels and novelty', async () => {
    for (const [maxPoolLevels, relativeFlag, novelty] of [
      [0, false, false],
      [2, false, false],
      [2, true, true],
    ] as const) {
      const geometry: PyramidGeometry = {
        size: 64,
        levels: 3,
        kernels: pyramidKernels(),
        maxPoolLevels,
        relative: relativeFlag,
      };
      const channels = featureChannels(geometry);
      const cells = gridSide(geometry) ** 2;
      const random = createRandom(maxPoolLevels + 2);
      const hidden = 4;
      const inputs = channels + (novelty ? 1 : 0);
      const head: CellHead = {
        inputs,
        hidden,
        w1: Float32Array.from({ length: hidden * inputs }, () => random() - 0.5),
        b1: Float32Array.from({ length: hidden }, () => random() - 0.5),
        w2: Float32Array.from({ length: hidden }, () => random() - 0.5),
        b2: 0.1,
      };
      const params = {
        geometry,
        featureMean: Float32Array.from({ length: channels * cells }, () => random() - 0.5),
        featureInvStd: Float32Array.from({ length: channels * cells }, () => 0.5 + random()),
        novelty,
        head,
      };
      const onnx = exportPyramidModelOnnx(params, {
        schema: 'linesight.model/v1',
        kind: 'test',
        inputSpec: greyInputSpec(64),
        outputs: { score: 'score', map: 'map' },
        threshold: 0,
      });
      const model = await OnnxModel.load(onnx);
      try {
        const input = Float32Array.from(
          { length: 64 * 64 },
          (_, i) => (((i % 64) + 3 * Math.floor(i / 64)) % 17) / 17 + 0.3 * random(),
        );
        const out = await model.run(input);
        const reference = pyramidModelForward(input, params);
        expect(Math.abs(out.score - reference.score)).toBeLessThan(1e-4);
        expect(out.map?.data).toHaveLength(cells);
        // The anomaly map too, cell by cell: a wrong map with the right maximum is a wrong model.
        const map = Array.from(out.map!.data);
        const ref = Array.from(reference.map.data);
        expect(ref).toHaveLength(cells);
        const worst = Math.max(...map.map((v, i) => Math.abs(v - ref[i]!)));
        expect(worst).toBeLessThan(1e-4 * Math.max(1, ...ref.map(Math.abs)));
      } finally {
        await model.close();
      }
    }
  });
});
