import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetFingerprint, readImageFolder } from '@linesight/model';
import { tinyContract, tinyOnnx } from '../../../vision/src/tiny-onnx-fixture.ts';
import { trainingOverlap } from './model-command.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-eval-overlap-'));
  for (const [cls, level] of [
    ['good', 40],
    ['good', 60],
    ['scratch', 200],
  ] as const) {
    await mkdir(join(dir, cls), { recursive: true });
    const png = await sharp({
      create: { width: 8, height: 8, channels: 3, background: { r: level, g: level, b: level } },
    })
      .png()
      .toBuffer();
    await writeFile(join(dir, cls, `img-${level}.png`), png);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('model eval on the training set', () => {
  it('warns when the eval set is the one the model was trained on, by content hash', async () => {
    const dataset = await readImageFolder(dir, { goodClass: 'good' });
    const trainedOnThis = tinyOnnx({
      width: 8,
      height: 8,
      contract: { ...tinyContract(8, 8), datasetFingerprint: datasetFingerprint(dataset.samples) },
    });
    expect(trainingOverlap(trainedOnThis, dataset.samples)).toMatch(
      /dataset the model was trained on/,
    );
    // Another set (one image fewer), a model without a fingerprint: no warning.
    expect(trainingOverlap(trainedOnThis, dataset.samples.slice(1))).toBeUndefined();
    expect(trainingOverlap(tinyOnnx({ width: 8, height: 8 }), dataset.samples)).toBeUndefined();
  });
});
