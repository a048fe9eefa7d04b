import { describe, expect, it, vi } from 'vitest';
import { tinyOnnx } from '@linesight/testkit/onnx';
import type { InferenceWorker } from './inference-worker.ts';
import { InferenceWorkerPool } from './inference-worker-pool.ts';
import { WorkerOnnxModel } from './worker-onnx-model.ts';
import { eventually } from '@linesight/testkit/eventually';

describe('InferenceWorkerPool', () => {
  it('hands out the warm spare instead of starting a thread', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 1 });
    const first = pool.take();
    try {
      expect(pool.liveWorkers).toBe(1);
      await eventually(() => pool.hasSpare, { what: 'the spare', intervalMs: 10 });
      expect(pool.liveWorkers).toBe(2);
      const second = pool.take();
      // The spare, not a third thread; the next spare comes later.
      expect(pool.liveWorkers).toBe(2);
      expect(pool.hasSpare).toBe(false);
      await second.close();
    } finally {
      await first.close();
      await pool.close();
    }
    await eventually(() => pool.liveWorkers === 0, {
      what: 'every thread to exit',
      intervalMs: 10,
    });
  });

  it('leaves no worker thread once its models and the pool are closed', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 1 });
    const bytes = tinyOnnx({ width: 16, height: 16 });
    const a = await WorkerOnnxModel.load(bytes, { workers: pool });
    const b = await WorkerOnnxModel.load(bytes, { workers: pool });
    expect((await a.run(new Float32Array(256).fill(0.5))).score).toBeCloseTo(0.5, 6);
    await eventually(() => pool.hasSpare, { what: 'the spare', intervalMs: 10 });
    expect(pool.liveWorkers).toBe(3);
    await a.close();
    await b.close();
    await pool.close();
    await pool.close();
    await eventually(() => pool.liveWorkers === 0, {
      what: 'every thread to exit',
      intervalMs: 10,
    });
    expect(pool.hasSpare).toBe(false);
  });

  it('starts no spare after close', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 1 });
    await pool.close();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let late: InferenceWorker | undefined;
    try {
      late = pool.take();
      vi.runAllTimers();
      expect(pool.liveWorkers).toBe(1);
      expect(pool.hasSpare).toBe(false);
    } finally {
      vi.useRealTimers();
      await late?.close();
    }
    await eventually(() => pool.liveWorkers === 0, { what: 'the thread to exit', intervalMs: 10 });
  });
});
