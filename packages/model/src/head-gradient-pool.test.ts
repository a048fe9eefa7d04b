import { describe, expect, it } from 'vitest';
import { trainCellHead, type HeadExample } from './cell-head.ts';
import { HeadGradientPool } from './head-gradient-pool.ts';
import { createRandom } from './random.ts';

describe('HeadGradientPool', () => {
  it('trains the very same head on two worker threads as in this thread', async () => {
    const cells = 16;
    const inputs = 3;
    const random = createRandom(9);
    const make = (): HeadExample[] =>
      Array.from({ length: 37 }, (_, n) => {
        const z = Float32Array.from({ length: inputs * cells }, () => random() - 0.5);
        if (n % 3 === 0) z[n % cells] = 4;
        return { z, defect: n % 3 === 0, weight: 1 / 37 };
      });
    const examples = make();
    const copies = examples.map((e) => ({ ...e, z: Float32Array.from(e.z) }));
    const options = { seed: 3, hidden: 4, epochs: 5, batchSize: 8, learningRate: 0.03 };
    const local = await trainCellHead(examples, cells, inputs, options);
    const pool = HeadGradientPool.start(copies, cells, options.hidden, 2);
    try {
      const pooled = await trainCellHead(copies, cells, inputs, {
        ...options,
        batchGradients: pool.batchGradients,
      });
      expect(Buffer.from(pooled.w1.buffer).equals(Buffer.from(local.w1.buffer))).toBe(true);
      expect(Buffer.from(pooled.w2.buffer).equals(Buffer.from(local.w2.buffer))).toBe(true);
      expect(pooled.b2).toBe(local.b2);
    } finally {
      await pool.close();
    }
    // A closed pool refuses work instead of hanging.
    await expect(pool.batchGradients(local, [[0], [1]])).rejects.toThrow(/closed/);
  });
});
