import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { writeSyntheticDataset } from '@linesight/firmware-sim';
import { runLinesight } from './linesight-process.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Two models trained by `linesight model train` on the same synthetic data with different seeds. */
    models: { v1: string; v2: string; dataset: string };
  }
}

// Small and quick: the e2e tests need real, distinct models, not the best ones.
const QUICK = ['--size', '128', '--epochs', '10'];

let dir: string | undefined;

/** Trains the e2e tests' models once for the whole run. */
export async function setup(project: TestProject): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), 'linesight-e2e-models-'));
  const dataset = join(dir, 'dataset');
  await writeSyntheticDataset(dataset, {
    seed: 7,
    count: 100,
    defectRate: 0.4,
    width: 192,
    height: 192,
  });
  const v1 = join(dir, 'v1.onnx');
  const v2 = join(dir, 'v2.onnx');
  await Promise.all([
    runLinesight(['model', 'train', '--data', dataset, '--out', v1, '--seed', '1', ...QUICK]),
    runLinesight(['model', 'train', '--data', dataset, '--out', v2, '--seed', '2', ...QUICK]),
  ]);
  project.provide('models', { v1, v2, dataset });
}

/** Removes the trained models. */
export async function teardown(): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}
