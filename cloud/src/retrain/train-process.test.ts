import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTrainProcess } from './train-process.ts';

let dir: string;

/** A stand-in trainer: what it does is given by its spec file. */
const CHILD = `
import { readFileSync } from 'node:fs';
const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const send = (m) => new Promise((r) => process.send(m, r));
if (spec.kind === 'ok') {
  await send({ type: 'progress', progress: { step: 'fit', done: 1, total: 2, epoch: 1, epochs: 2 } });
  await send({ type: 'done', champion: {}, challenger: {}, trainingMs: 5, datasetFingerprint: 'f', mode: 'supervised' });
  process.exit(0);
} else if (spec.kind === 'error') {
  await send({ type: 'error', code: 'ERR_DATASET', message: 'no good images' });
  process.exit(1);
} else if (spec.kind === 'priority') {
  // The nice value of this (main) thread and of a worker thread started now, as training does.
  const { getPriority } = await import('node:os');
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker("const { parentPort } = require('node:worker_threads'); parentPort.postMessage(require('node:os').getPriority(0));", { eval: true });
  const workerNice = await new Promise((r) => worker.once('message', r));
  await worker.terminate();
  await send({ type: 'done', champion: { main: getPriority(0), worker: workerNice }, challenger: {}, trainingMs: 1, datasetFingerprint: 'f', mode: 'supervised' });
  process.exit(0);
} else if (spec.kind === 'crash') {
  process.stderr.write('boom: out of memory\\n');
  process.exit(3);
} else {
  await send({ type: 'progress', progress: { step: 'fit', done: 0, total: 1 } });
  setInterval(() => {}, 1000); // trains forever
}
`;

async function spec(kind: string): Promise<string> {
  const path = join(dir, `${kind}.json`);
  await writeFile(path, JSON.stringify({ kind }));
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-train-process-'));
  await writeFile(join(dir, 'child.mjs'), CHILD);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runTrainProcess', () => {
  const entry = () => join(dir, 'child.mjs');

  it('reports progress and resolves with the result', async () => {
    const seen: string[] = [];
    const out = await runTrainProcess(await spec('ok'), {
      entry: entry(),
      timeoutMs: 60_000,
      onProgress: (p) => seen.push(`${p.step} ${p.done}/${p.total} epoch ${String(p.epoch)}`),
    });
    expect(out).toMatchObject({ type: 'done', trainingMs: 5, datasetFingerprint: 'f' });
    expect(seen).toEqual(['fit 1/2 epoch 1']);
  });

  it('runs the trainer and the threads it starts at a low CPU priority', async () => {
    const outcome = await runTrainProcess(await spec('priority'), {
      timeoutMs: 60_000,
      entry: join(dir, 'child.mjs'),
    });
    expect(outcome.champion).toEqual({ main: 10, worker: 10 });
  });

  it("rejects with the trainer's own error", async () => {
    await expect(
      runTrainProcess(await spec('error'), { entry: entry(), timeoutMs: 60_000 }),
    ).rejects.toMatchObject({ code: 'ERR_TRAINING', message: 'no good images' });
  });

  it('rejects with the end of stderr when the process dies without a word', async () => {
    await expect(
      runTrainProcess(await spec('crash'), { entry: entry(), timeoutMs: 60_000 }),
    ).rejects.toThrow(/code 3.*boom: out of memory/s);
  });

  it('stops the process when cancelled', async () => {
    const controller = new AbortController();
    const run = runTrainProcess(await spec('forever'), {
      entry: entry(),
      timeoutMs: 600_000,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await expect(run).rejects.toMatchObject({
      code: 'ERR_TRAINING',
      message: 'the job was cancelled',
    });
  });

  it('stops the process at its deadline', async () => {
    await expect(
      runTrainProcess(await spec('forever'), { entry: entry(), timeoutMs: 300 }),
    ).rejects.toThrow(/longer than 0 s/);
  });
});
