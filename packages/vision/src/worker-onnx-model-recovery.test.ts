import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { isLinesightError, LinesightError } from '@linesight/protocol';
import { tinyOnnx } from '@linesight/testkit/onnx';
import { WorkerOnnxModel } from './worker-onnx-model.ts';

// What the watchdog leaves behind and how closing meets it: the guards the agent's frame
// pipeline and shutdown rely on (ERR_MODEL_WATCHDOG with its limit, abandoned runs that a
// clean exit waits for, no run on a closed model).

async function grey(value: number): Promise<Buffer> {
  return sharp({
    create: { width: 16, height: 16, channels: 3, background: { r: value, g: value, b: value } },
  })
    .png()
    .toBuffer();
}

async function errorOf(p: Promise<unknown>): Promise<LinesightError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LinesightError) return err;
    throw err;
  }
  throw new Error('expected a LinesightError, the call succeeded');
}

/** Slow on bright images (a 1024x1024 MatMul chain), fast on dark ones. */
const slowWhenBright = () =>
  tinyOnnx({ width: 16, height: 16, slow: { size: 1024, steps: 16, when: 'bright' } });

describe('WorkerOnnxModel watchdog and recovery', () => {
  it('says which limit a run exceeded, and keeps the abandoned run counted until it returns', async () => {
    const model = await WorkerOnnxModel.load(slowWhenBright(), { watchdogMs: 150 });
    try {
      const err = await errorOf(model.scoreImage(await grey(220)));
      expect(err.code).toBe('ERR_MODEL_WATCHDOG');
      expect(err.details).toMatchObject({ watchdogMs: 150 });
      expect(err.message).toMatch(/150 ms watchdog limit/);
      // The slow thread is still inside its run (it takes seconds): a clean exit must wait.
      expect(WorkerOnnxModel.abandonedRuns).toBeGreaterThanOrEqual(1);
      await WorkerOnnxModel.waitForAbandonedRuns();
      expect(WorkerOnnxModel.abandonedRuns).toBe(0);
      // The replacement worker answers.
      expect((await model.scoreImage(await grey(40))).score).toBeCloseTo(40 / 255, 6);
    } finally {
      await model.close();
    }
  });

  it('does not trip the watchdog on a run within the limit or without one', async () => {
    const unlimited = await WorkerOnnxModel.load(
      tinyOnnx({ width: 16, height: 16, slow: { size: 256, steps: 2 } }),
    );
    try {
      expect((await unlimited.scoreImage(await grey(220))).score).toBeCloseTo(220 / 255, 5);
      expect(unlimited.watchdogTrips).toBe(0);
    } finally {
      await unlimited.close();
    }
  });

  it('refuses runs once closed, and closing twice is fine', async () => {
    const model = await WorkerOnnxModel.load(tinyOnnx({ width: 16, height: 16 }));
    await model.close();
    await model.close();
    const err = await errorOf(model.run(new Float32Array(256).fill(0.5)));
    expect(isLinesightError(err, 'ERR_MODEL_LOAD')).toBe(true);
    expect(err.message).toMatch(/closed/);
  });

  it('closes while a tripped run is still out, and waits for its thread', async () => {
    const model = await WorkerOnnxModel.load(slowWhenBright(), { watchdogMs: 150 });
    const err = await errorOf(model.scoreImage(await grey(220)));
    expect(err.code).toBe('ERR_MODEL_WATCHDOG');
    await model.close();
    // close() waited for the retired worker: nothing of this model is left running.
    expect(WorkerOnnxModel.abandonedRuns).toBe(0);
  });

  it('runs that wait for the replacement worker succeed on it', async () => {
    const model = await WorkerOnnxModel.load(slowWhenBright(), { watchdogMs: 150 });
    try {
      const tripped = model.scoreImage(await grey(220));
      const dark = await grey(30);
      expect((await errorOf(tripped)).code).toBe('ERR_MODEL_WATCHDOG');
      // Started at once after the trip: they wait for the fresh worker, not the stuck one.
      const scores = await Promise.all([model.scoreImage(dark), model.scoreImage(dark)]);
      expect(scores.map((s) => s.score)).toEqual(
        [30 / 255, 30 / 255].map((x) => expect.closeTo(x, 6)),
      );
      expect(model.watchdogTrips).toBe(1);
    } finally {
      await model.close();
    }
  });
});
