import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkerOnnxModel, type RunOptions, type ScoringModel } from '@linesight/vision';
import { SharedModelLoader } from './shared-model-loader.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

/** A stand-in for the worker model that records what each run was given. */
function recordingModel(): { model: ScoringModel; runs: (RunOptions | undefined)[] } {
  const runs: (RunOptions | undefined)[] = [];
  const model = {
    contract: {},
    run: (_input: Float32Array, options?: RunOptions) => {
      runs.push(options);
      return Promise.resolve({ score: 0.5 });
    },
    scoreImage: () => Promise.reject(new Error('not used')),
    close: () => Promise.resolve(),
  } as unknown as ScoringModel;
  return { model, runs };
}

describe('SharedModelLoader', () => {
  it('loads a version once for all devices and passes each run its options (the golden check watchdog)', async () => {
    const { model, runs } = recordingModel();
    const load = vi.spyOn(WorkerOnnxModel, 'load').mockResolvedValue(model as WorkerOnnxModel);
    const loader = new SharedModelLoader();
    const a = await loader.load(new Uint8Array([1]), { watchdogMs: 2000, sha256: 'abc' });
    const b = await loader.load(new Uint8Array([1]), { watchdogMs: 2000, sha256: 'abc' });
    expect(load).toHaveBeenCalledTimes(1);
    await a.run(new Float32Array(4), { watchdogMs: 30_000 });
    await b.run(new Float32Array(4));
    expect(runs).toEqual([{ watchdogMs: 30_000 }, undefined]);
    await a.close();
    expect(loader.loaded).toBe(1);
    await b.close();
    expect(loader.loaded).toBe(0);
  });
});
