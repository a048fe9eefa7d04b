import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { tinyOnnx } from '@linesight/testkit/onnx';
import { InferenceWorkerPool } from './inference-worker-pool.ts';
import { WorkerOnnxModel } from './worker-onnx-model.ts';
import { OnnxModel } from './onnx-model.ts';

async function grey(value: number, size = 16): Promise<Buffer> {
  return sharp({
    create: {
      width: size,
      height: size,
      channels: 3,
      background: { r: value, g: value, b: value },
    },
  })
    .png()
    .toBuffer();
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isLinesightError(err) ? err.code : `other: ${String(err)}`;
  }
}

describe('WorkerOnnxModel', () => {
  it('scores like the in-process model', async () => {
    const bytes = tinyOnnx({ width: 16, height: 16 });
    const worker = await WorkerOnnxModel.load(bytes);
    const local = await OnnxModel.load(bytes);
    try {
      const image = await grey(128);
      const a = await worker.scoreImage(image);
      const b = await local.scoreImage(image);
      expect(a.score).toBeCloseTo(128 / 255, 6);
      expect(a.score).toBe(b.score);
      expect(a.map?.data).toEqual(b.map?.data);
    } finally {
      await worker.close();
      await local.close();
    }
  });

  it('keeps the event loop free while a slow inference runs', async () => {
    const model = await WorkerOnnxModel.load(
      tinyOnnx({ width: 16, height: 16, slow: { size: 1024, steps: 6 } }),
    );
    try {
      const image = await grey(100);
      let settled = false;
      const run = model.scoreImage(image).finally(() => {
        settled = true;
      });
      // Ordering, not rate: the loop turns while the run is still going. Run on this
      // thread, the inference would hold the loop until it ended, so no turn would
      // find it unsettled. (A rate check fails on a busy machine for the wrong reason.)
      let turnsWhileRunning = 0;
      while (!settled && turnsWhileRunning < 5) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (!settled) turnsWhileRunning++;
      }
      await run;
      expect(turnsWhileRunning).toBe(5);
    } finally {
      await model.close();
    }
  });

  it('abandons a run past the watchdog limit, then recovers on a fresh worker', async () => {
    // Slow (a 1024x1024 MatMul chain) on bright images only; dark ones run it at 1x1.
    const workers = new InferenceWorkerPool();
    const take = vi.spyOn(workers, 'take');
    const model = await WorkerOnnxModel.load(
      tinyOnnx({ width: 16, height: 16, slow: { size: 1024, steps: 16, when: 'bright' } }),
      { watchdogMs: 200, workers },
    );
    try {
      expect((await model.scoreImage(await grey(50))).score).toBeCloseTo(50 / 255, 6);
      expect(take).toHaveBeenCalledTimes(1);
      expect(await codeOf(model.scoreImage(await grey(200)))).toBe('ERR_MODEL_WATCHDOG');
      expect(model.watchdogTrips).toBe(1);
      // The same model answers the next (fast) image at once from a fresh worker; queued
      // behind the abandoned run on the old one, it would trip the watchdog too.
      expect(take).toHaveBeenCalledTimes(2);
      expect((await model.scoreImage(await grey(60))).score).toBeCloseTo(60 / 255, 6);
      expect(model.watchdogTrips).toBe(1);
    } finally {
      take.mockRestore();
      await model.close();
      await workers.close();
    }
  });

  it('takes a per-run watchdog limit in place of its own (a check at load time uses a longer one)', async () => {
    // One 1024x1024 MatMul on bright inputs: far over 1 ms on any machine, far under 2 minutes.
    const model = await WorkerOnnxModel.load(
      tinyOnnx({ width: 16, height: 16, slow: { size: 1024, steps: 1, when: 'bright' } }),
      { watchdogMs: 1 },
    );
    const bright = () => new Float32Array(16 * 16).fill(200 / 255);
    try {
      const { score } = await model.run(bright(), { watchdogMs: 120_000 });
      expect(score).toBeCloseTo(200 / 255, 5);
      expect(model.watchdogTrips).toBe(0);
      expect(await codeOf(model.run(bright()))).toBe('ERR_MODEL_WATCHDOG');
      expect(model.watchdogTrips).toBe(1);
    } finally {
      await model.close();
    }
  });

  it('refuses non-finite outputs and models that fail to load', async () => {
    const logZero = await WorkerOnnxModel.load(
      tinyOnnx({ width: 16, height: 16, score: 'log-mean' }),
    );
    expect(await codeOf(logZero.scoreImage(await grey(0)))).toBe('ERR_MODEL_OUTPUT');
    await logZero.close();
    expect(
      await codeOf(WorkerOnnxModel.load(tinyOnnx({ width: 16, height: 16, extraOp: 'NoSuchOp' }))),
    ).toBe('ERR_MODEL_LOAD');
    expect(
      await codeOf(WorkerOnnxModel.load(tinyOnnx({ width: 16, height: 16, inputName: 'other' }))),
    ).toBe('ERR_MODEL_CONTRACT');
  });

  it('does not keep the process alive once idle, even when never closed', async () => {
    // A child process loads a model, scores one frame and returns from its script
    // without closing: it must exit by itself (a ref'd worker would hold it forever).
    const here = fileURLToPath(new URL('.', import.meta.url));
    const dir = await mkdtemp(join(os.tmpdir(), 'linesight-worker-exit-'));
    const script = join(dir, 'score-once.mts');
    await writeFile(
      script,
      [
        `import { WorkerOnnxModel } from '${here}worker-onnx-model.ts';`,
        `import { tinyOnnx } from '${here}../../testkit/src/onnx.ts';`,
        `const model = await WorkerOnnxModel.load(tinyOnnx({ width: 16, height: 16 }));`,
        `const out = await model.run(new Float32Array(256).fill(0.5));`,
        `console.log('scored', out.score);`,
      ].join('\n'),
    );
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
        timeout: 60_000,
        cwd: here,
      }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(stdout).toMatch(/scored 0\.5/);
  });

  // Thread priorities are a Linux feature; elsewhere the option is ignored.
  it.runIf(process.platform === 'linux')(
    'runs its inference thread at the nice value asked for, and leaves other threads alone',
    async () => {
      const niceOfThreads = async () => {
        const tasks = await readdir('/proc/self/task');
        const nices: number[] = [];
        for (const tid of tasks) {
          try {
            const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8');
            // Fields after the command name: state is field 3, nice field 19.
            nices.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
          } catch {
            // the thread ended meanwhile
          }
        }
        return nices;
      };
      const bytes = tinyOnnx({ width: 16, height: 16 });
      const before = (await niceOfThreads()).filter((n) => n === 13).length;
      const low = await WorkerOnnxModel.load(bytes, { threadNice: 13 });
      const normal = await WorkerOnnxModel.load(bytes);
      try {
        expect((await niceOfThreads()).filter((n) => n === 13).length).toBeGreaterThan(before);
        // The calling (main) thread keeps its priority.
        expect(os.getPriority()).not.toBe(13);
        // Both still score.
        const input = new Float32Array(16 * 16).fill(0.5);
        expect((await low.run(input.slice())).score).toBe((await normal.run(input.slice())).score);
      } finally {
        await low.close();
        await normal.close();
      }
    },
  );
});
