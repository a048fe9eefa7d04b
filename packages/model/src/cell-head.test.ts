import { describe, expect, it } from 'vitest';
import {
  headCellLogits,
  logMeanExp,
  mergeHeads,
  trainCellHead,
  type HeadExample,
} from './cell-head.ts';
import { auroc } from './metrics.ts';
import { createRandom } from './random.ts';

describe('cell head', () => {
  const cells = 16;
  const inputs = 3;
  const random = createRandom(4);
  // Defect images have one hot cell in channel 0; good ones do not.
  const examples: HeadExample[] = Array.from({ length: 40 }, (_, n) => {
    const z = Float32Array.from({ length: inputs * cells }, () => random() - 0.5);
    const defect = n % 2 === 1;
    if (defect) z[Math.floor(random() * cells)] = 4;
    return { z, defect, weight: 1 / 40 };
  });

  it('learns a hot cell from image labels alone, deterministically', async () => {
    const options = { seed: 1, hidden: 4, epochs: 150, batchSize: 8, learningRate: 0.03 };
    const head = await trainCellHead(examples, cells, inputs, options);
    const again = await trainCellHead(examples, cells, inputs, options);
    expect(Buffer.from(again.w1.buffer).equals(Buffer.from(head.w1.buffer))).toBe(true);
    const scores = examples.map((e) => logMeanExp(headCellLogits(head, e.z, cells)));
    expect(
      auroc(
        scores,
        examples.map((e) => e.defect),
      ),
    ).toBeGreaterThan(0.95);
  });

  it('merges heads into one whose cell logits are their mean', async () => {
    const a = await trainCellHead(examples, cells, inputs, { seed: 1, hidden: 3, epochs: 2 });
    const b = await trainCellHead(examples, cells, inputs, { seed: 2, hidden: 3, epochs: 2 });
    const merged = mergeHeads([a, b]);
    expect(merged.hidden).toBe(6);
    const z = (examples[1] as HeadExample).z;
    const la = headCellLogits(a, z, cells);
    const lb = headCellLogits(b, z, cells);
    const lm = headCellLogits(merged, z, cells);
    for (let i = 0; i < cells; i++)
      expect(lm[i]).toBeCloseTo(((la[i] as number) + (lb[i] as number)) / 2, 5);
  });
});
