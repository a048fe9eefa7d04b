import { describe, expect, it, vi } from 'vitest';
import { tinyOnnx } from '@linesight/testkit/onnx';
import { goldenInputs } from './golden-inputs.ts';
import { OnnxModel } from './onnx-model.ts';
import { readModelContract } from './onnx-contract.ts';
import { goldenScoresOf } from './golden-scores.ts';

describe('goldenScoresOf', () => {
  it("gives the model's score on each standard golden input of its spec, in order", async () => {
    const bytes = tinyOnnx({ width: 8, height: 8 });
    const model = await OnnxModel.load(bytes);
    const expected: number[] = [];
    for (const input of goldenInputs(readModelContract(bytes).inputSpec))
      expected.push((await model.run(input)).score);
    await model.close();
    const scores = await goldenScoresOf(bytes);
    expect(scores).toEqual(expected);
    expect(new Set(scores).size).toBeGreaterThan(1);
  });

  it('closes the model it loaded', async () => {
    const close = vi.spyOn(OnnxModel.prototype, 'close');
    try {
      await goldenScoresOf(tinyOnnx({ width: 8, height: 8 }));
      expect(close).toHaveBeenCalledTimes(1);
    } finally {
      close.mockRestore();
    }
  });

  it('throws the load error of a file that is not a model', async () => {
    await expect(goldenScoresOf(new Uint8Array([1, 2, 3]))).rejects.toThrow();
  });
});
