import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { isLinesightError } from '@linesight/protocol';
import { OnnxModel } from './onnx-model.ts';
import { preprocessImage } from './preprocess.ts';
import { tinyContract, tinyOnnx } from '@linesight/testkit/onnx';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await rejection(promise);
  expect(isLinesightError(err) ? err.code : err).toBe(code);
}

describe('OnnxModel', () => {
  it('runs a model and returns score and map', async () => {
    const model = await OnnxModel.load(tinyOnnx({ width: 16, height: 8 }));
    try {
      expect(model.contract.kind).toBe('test-mean');
      const input = Float32Array.from({ length: 128 }, (_, i) => i);
      const out = await model.run(input);
      expect(out.score).toBeCloseTo(63.5, 4);
      expect(out.map?.width).toBe(16);
      expect(out.map?.height).toBe(8);
      expect(out.map?.data).toEqual(input);
    } finally {
      await model.close();
    }
  });

  it('scores an encoded image with the preprocessing its contract names', async () => {
    const model = await OnnxModel.load(tinyOnnx({ width: 8, height: 8, channels: 3 }), {
      intraOpNumThreads: 2,
    });
    try {
      const image = await sharp({
        create: { width: 20, height: 10, channels: 3, background: { r: 51, g: 102, b: 153 } },
      })
        .png()
        .toBuffer();
      const scored = await model.scoreImage(image);
      const input = await preprocessImage(image, model.contract.inputSpec);
      expect(scored.score).toBeCloseTo(input.reduce((a, b) => a + b, 0) / input.length, 6);
      expect(scored.score).toBeCloseTo((0.2 + 0.4 + 0.6) / 3, 5);
      expect(scored.preprocessMs).toBeGreaterThanOrEqual(0);
      expect(scored.inferenceMs).toBeGreaterThanOrEqual(0);
      await expectCode(model.scoreImage(Buffer.from('garbage')), 'ERR_IMAGE_DECODE');
    } finally {
      await model.close();
    }
  });

  it('refuses models whose graph does not match the contract', async () => {
    await expectCode(
      OnnxModel.load(tinyOnnx({ width: 8, height: 8, inputName: 'pixels' })),
      'ERR_MODEL_CONTRACT',
    );
    const noMap = { ...tinyContract(8, 8), outputs: { score: 'score', map: 'heatmap' } };
    await expectCode(
      OnnxModel.load(tinyOnnx({ width: 8, height: 8, contract: noMap })),
      'ERR_MODEL_CONTRACT',
    );
    await expectCode(
      OnnxModel.load(tinyOnnx({ width: 8, height: 8, contract: tinyContract(16, 8) })),
      'ERR_MODEL_CONTRACT',
    );
    await expectCode(
      OnnxModel.load(tinyOnnx({ width: 8, height: 8, contract: null })),
      'ERR_MODEL_CONTRACT',
    );
  });

  it('wraps runtime load failures as ERR_MODEL_LOAD with the cause', async () => {
    const err = await rejection(
      OnnxModel.load(tinyOnnx({ width: 8, height: 8, extraOp: 'NoSuchOperator' })),
    );
    expect(isLinesightError(err, 'ERR_MODEL_LOAD')).toBe(true);
    expect((err as Error).cause).toBeDefined();
  });

  it('rejects non-finite or wrongly shaped outputs with ERR_MODEL_OUTPUT', async () => {
    const logModel = await OnnxModel.load(tinyOnnx({ width: 8, height: 8, score: 'log-mean' }));
    const wide = await OnnxModel.load(tinyOnnx({ width: 8, height: 8, score: 'all-values' }));
    try {
      expect((await logModel.run(new Float32Array(64).fill(1))).score).toBeCloseTo(0, 6);
      await expectCode(logModel.run(new Float32Array(64)), 'ERR_MODEL_OUTPUT');
      await expectCode(logModel.run(new Float32Array(64).fill(NaN)), 'ERR_MODEL_OUTPUT');
      await expectCode(wide.run(new Float32Array(64).fill(1)), 'ERR_MODEL_OUTPUT');
      await expectCode(logModel.run(new Float32Array(65)), 'ERR_MODEL_CONTRACT');
    } finally {
      await Promise.all([logModel.close(), wide.close()]);
    }
  });

  it('closes idempotently, after in-flight runs, and refuses runs once closed', async () => {
    const model = await OnnxModel.load(tinyOnnx({ width: 64, height: 64 }));
    const inFlight = model.run(new Float32Array(64 * 64).fill(2));
    const closed = model.close();
    expect(model.close()).toBe(closed);
    expect((await inFlight).score).toBe(2);
    await closed;
    await expectCode(model.run(new Float32Array(64 * 64)), 'ERR_MODEL_LOAD');
  });
});
