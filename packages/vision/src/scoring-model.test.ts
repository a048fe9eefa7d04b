import { afterEach, describe, expect, it, vi } from 'vitest';
import sharp from 'sharp';
import { tinyContract } from '@linesight/testkit/onnx';
import { preprocessImage } from './preprocess.ts';
import { scoreImageWith, type ModelOutput } from './scoring-model.ts';

describe('scoreImageWith', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('runs the model on the preprocessed image and times each step on its own', async () => {
    const contract = tinyContract(8, 8);
    const image = await sharp({
      create: { width: 16, height: 12, channels: 3, background: { r: 40, g: 80, b: 120 } },
    })
      .png()
      .toBuffer();
    const expectedInput = await preprocessImage(image, contract.inputSpec);
    const inputs: Float32Array[] = [];
    const map = { width: 2, height: 1, data: Float32Array.of(0.1, 0.2) };
    const model = {
      contract,
      run: (input: Float32Array): Promise<ModelOutput> => {
        inputs.push(input);
        return Promise.resolve({ score: 0.75, map });
      },
    };
    // Clock readings before preprocessing, between the steps and after the run.
    const clock = [1000, 1012.5, 1040];
    vi.spyOn(performance, 'now').mockImplementation(() => clock.shift() ?? Number.NaN);
    const scored = await scoreImageWith(model, image);
    expect(scored).toEqual({ score: 0.75, map, preprocessMs: 12.5, inferenceMs: 27.5 });
    expect(inputs).toEqual([expectedInput]);
    expect(clock).toEqual([]);
  });

  it('does not run the model on an image that does not decode', async () => {
    const run = vi.fn();
    await expect(
      scoreImageWith({ contract: tinyContract(8, 8), run }, Buffer.from('not an image')),
    ).rejects.toMatchObject({ code: 'ERR_IMAGE_DECODE' });
    expect(run).not.toHaveBeenCalled();
  });
});
