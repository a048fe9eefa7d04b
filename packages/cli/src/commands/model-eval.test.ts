import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@linesight/protocol';
import {
  datasetFingerprint,
  holdoutSplit,
  readImageFolder,
  trainingImageHashes,
} from '@linesight/model';
import { tinyContract, tinyOnnx } from '@linesight/testkit/onnx';
import { heldOutSamples, trainingOverlap, unseenSamples } from './model-command.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-eval-overlap-'));
  for (const [cls, level] of [
    ['good', 40],
    ['good', 60],
    ['good', 70],
    ['good', 80],
    ['good', 90],
    ['good', 100],
    ['good', 110],
    ['good', 120],
    ['scratch', 200],
    ['scratch', 210],
    ['scratch', 220],
    ['scratch', 230],
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

describe('model eval --holdout', () => {
  it('scores exactly the images the model was trained without, and refuses what cannot be rebuilt', async () => {
    const dataset = await readImageFolder(dir, { goodClass: 'good' });
    const split = holdoutSplit(dataset.samples, { seed: 7, share: 0.25 });
    const withHoldout = tinyOnnx({
      width: 8,
      height: 8,
      contract: { ...tinyContract(8, 8), training: { holdout: split.record } },
    });
    const held = heldOutSamples(withHoldout, dataset.samples);
    // A quarter of each class, and none of the images it trained on.
    expect(held.map((s) => s.path).sort()).toEqual(
      split.heldOut.map((i) => dataset.samples[i]?.path).sort(),
    );
    expect(held.filter((s) => s.label === 'good')).toHaveLength(2);
    expect(held.filter((s) => s.label === 'defect')).toHaveLength(1);
    // The same folder read in another order gives the same images.
    expect(
      heldOutSamples(withHoldout, [...dataset.samples].reverse())
        .map((s) => s.path)
        .sort(),
    ).toEqual(held.map((s) => s.path).sort());
    // Without --holdout, the partial overlap is named.
    expect(trainingOverlap(withHoldout, dataset.samples)).toMatch(/--holdout/);
    // Another folder, or a model that records no split: refused with the reason.
    expect(() => heldOutSamples(withHoldout, dataset.samples.slice(1))).toThrow(/not the one/);
    expect(() => heldOutSamples(tinyOnnx({ width: 8, height: 8 }), dataset.samples)).toThrow(
      /records no held-out split/,
    );
  });
});

describe('model eval on a folder that shares some images with training', () => {
  it('names the shared images, and --unseen-only scores exactly the others', async () => {
    const dataset = await readImageFolder(dir, { goodClass: 'good' });
    // Trained on five of the twelve images, and on one image that is not here.
    const trainedOn = [
      ...dataset.samples.slice(0, 5).map((s) => sha256Hex(s.image)),
      'ab'.repeat(32),
    ];
    const model = tinyOnnx({
      width: 8,
      height: 8,
      contract: { ...tinyContract(8, 8), trainingImages: trainingImageHashes(trainedOn) },
    });
    const warning = trainingOverlap(model, dataset.samples);
    expect(warning).toMatch(/^5 of 12 images here \(41\.7 %\) were in the model's training set/);
    expect(warning).toContain(dataset.samples[0]?.path);
    expect(warning).toMatch(/--unseen-only/);
    // The same images in another order are found the same.
    expect(trainingOverlap(model, [...dataset.samples].reverse())).toMatch(/^5 of 12/);
    const unseen = unseenSamples(model, dataset.samples);
    expect(unseen.map((s) => s.path).sort()).toEqual(
      dataset.samples
        .slice(5)
        .map((s) => s.path)
        .sort(),
    );
    // A folder of new images: no warning.
    expect(trainingOverlap(model, dataset.samples.slice(5))).toBeUndefined();
    // Nothing unseen, or a model that records no hashes: refused with the reason.
    expect(() => unseenSamples(model, dataset.samples.slice(0, 5))).toThrow(/nothing unseen/);
    expect(() => unseenSamples(tinyOnnx({ width: 8, height: 8 }), dataset.samples)).toThrow(
      /records no training image hashes/,
    );
  });
});
