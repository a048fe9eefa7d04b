import { describe, expect, it } from 'vitest';
import { FeaturePool } from './feature-pool.ts';
import { createRandom } from './random.ts';
import { pyramidFeatures, pyramidKernels, type PyramidGeometry } from './pyramid-features.ts';

const geometry: PyramidGeometry = {
  size: 32,
  levels: 3,
  kernels: pyramidKernels(),
  maxPoolLevels: 2,
  relative: true,
};

function image(seed: number): Float32Array {
  const random = createRandom(seed);
  return Float32Array.from({ length: geometry.size * geometry.size }, () => random());
}

describe('FeaturePool', () => {
  it('gives the features of this thread, each to its own request, with many in flight', async () => {
    const pool = FeaturePool.start(geometry, 2);
    try {
      expect(pool.threads).toBe(2);
      const inputs = Array.from({ length: 7 }, (_, i) => image(i + 1));
      const got = await Promise.all(inputs.map((input) => pool.features(input)));
      for (const [i, input] of inputs.entries()) {
        const expected = pyramidFeatures(input, geometry).data;
        expect(
          Buffer.from((got[i] as Float32Array).buffer).equals(Buffer.from(expected.buffer)),
        ).toBe(true);
        // The caller's input is copied, not moved into the worker.
        expect(input.length).toBe(geometry.size * geometry.size);
      }
    } finally {
      await pool.close();
    }
  });

  it('refuses work after close, and closes once', async () => {
    const pool = FeaturePool.start(geometry, 1);
    await pool.close();
    await pool.close();
    await expect(pool.features(image(1))).rejects.toThrow(/closed/);
  });
});
