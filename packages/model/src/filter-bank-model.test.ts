import { beforeAll, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { OnnxModel, decodeImagePixels, rawToTensor, readModelContract } from '@linesight/vision';
import { evaluateModel, type ModelEvaluation } from './evaluate.ts';
import {
  trainFilterBankModel,
  type TrainedFilterBankModel,
  type TrainingProgress,
} from './filter-bank-model.ts';
import { filterBankForward } from './filter-bank-reference.ts';
import { generateSyntheticSamples } from './synthetic-dataset.ts';
import type { TrainingSample } from './training-sample.ts';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('trainFilterBankModel', () => {
  let train: TrainingSample[];
  let test: TrainingSample[];
  let trained: TrainedFilterBankModel;
  let evaluation: ModelEvaluation;
  const progress: TrainingProgress[] = [];

  beforeAll(async () => {
    // Same encoder for training and test: a PNG-trained model sees JPEG artefacts as anomalies.
    train = await generateSyntheticSamples({
      seed: 101,
      good: 80,
      defects: { spot: 12, scratch: 12 },
      format: 'jpeg',
    });
    test = await generateSyntheticSamples({
      seed: 202,
      good: 60,
      defects: { spot: 30, scratch: 30 },
      format: 'jpeg',
    });
    trained = await trainFilterBankModel(train, {
      seed: 7,
      name: 'synthetic-texture',
      onProgress: (p) => progress.push(p),
    });
    evaluation = await evaluateModel(trained.onnx, test);
  });

  it('separates defects from good images on a fresh test set', () => {
    expect(evaluation.images).toBe(120);
    expect(evaluation.auroc).toBeGreaterThan(0.9);
    expect(evaluation.perClass.spot).toBeGreaterThan(0.85);
    expect(evaluation.perClass.scratch).toBeGreaterThan(0.85);
    const defectRate = evaluation.truePositives / evaluation.defect;
    const goodRate = evaluation.falsePositives / evaluation.good;
    expect(defectRate).toBeGreaterThan(goodRate + 0.5);
  });

  it('fills the contract and embeds it in the ONNX file', () => {
    const { contract } = trained;
    expect(readModelContract(trained.onnx)).toEqual(contract);
    expect(contract).toMatchObject({
      kind: 'anomaly-filter-bank',
      name: 'synthetic-texture',
      outputs: { score: 'score', map: 'map' },
      inputSpec: { width: 256, height: 256, channels: 1, resize: 'fill', layout: 'NCHW' },
    });
    expect(contract.inputSpec.scale).toBeCloseTo(1 / 255, 12);
    expect(contract.inputSpec.mean[0]).toBeGreaterThan(0.4);
    expect(contract.inputSpec.mean[0]).toBeLessThan(0.6);
    expect(contract.threshold).toBeGreaterThan(0);
    expect(contract.training).toMatchObject({
      seed: 7,
      samples: 104,
      trainGood: 60,
      trainDefect: 18,
      validationGood: 20,
      validationDefect: 6,
    });
    expect(contract.training?.thresholdRule).toBe('max-f1');
    expect(contract.datasetFingerprint).toMatch(/^[0-9a-f]{64}$/);
    const histogram = contract.referenceProfile?.score;
    expect(histogram?.counts).toHaveLength(20);
    expect(histogram?.edges).toHaveLength(21);
    expect(histogram?.counts.reduce((a, b) => a + b, 0)).toBe(trained.referenceScores.length);
    expect(trained.referenceScores).toHaveLength(20);
    expect(trained.metrics.images).toBe(26);
    expect(trained.trainingMs).toBeGreaterThan(0);
    expect(new Set(progress.map((p) => p.step))).toEqual(
      new Set(['decode', 'fit', 'validate', 'export']),
    );
  });

  it('gives the same scores through ONNX Runtime as the reference forward pass (parity)', async () => {
    const model = await OnnxModel.load(trained.onnx);
    try {
      let worst = 0;
      for (const sample of [...test.slice(0, 10), ...test.slice(-10), ...train.slice(0, 5)]) {
        const onnx = await model.scoreImage(sample.image);
        const input = rawToTensor(
          await decodeImagePixels(sample.image, model.contract.inputSpec),
          model.contract.inputSpec,
        );
        const reference = filterBankForward(input, trained.params);
        expect(Math.abs(onnx.score - reference.score)).toBeLessThan(1e-4);
        expect(onnx.map?.width).toBe(reference.map.width);
        expect(onnx.map?.height).toBe(reference.map.height);
        const map = onnx.map?.data ?? new Float32Array();
        for (let i = 0; i < map.length; i++)
          worst = Math.max(worst, Math.abs((map[i] as number) - (reference.map.data[i] as number)));
      }
      expect(worst).toBeLessThan(1e-4);
    } finally {
      await model.close();
    }
  });

  it('works from good images alone (anomaly mode)', async () => {
    const goodOnly = train.filter((s) => s.label === 'good');
    const model = await trainFilterBankModel(goodOnly, { seed: 7 });
    expect(model.contract.training?.thresholdRule).toBe('good-quantile');
    expect(model.metrics.defect).toBe(0);
    expect(model.metrics.auroc).toBeNull();
    const result = await evaluateModel(model.onnx, test);
    expect(result.auroc).toBeGreaterThan(0.9);
    // The good-quantile threshold keeps false alarms rare.
    expect(result.falsePositives / result.good).toBeLessThan(0.1);
    expect(result.truePositives / result.defect).toBeGreaterThan(0.5);
  });
});

describe('trainFilterBankModel determinism and errors', () => {
  let small: TrainingSample[];

  beforeAll(async () => {
    small = await generateSyntheticSamples({
      seed: 5,
      good: 16,
      defects: { spot: 4, scratch: 4 },
      size: 64,
    });
  });

  it('produces byte-identical ONNX for the same samples and seed, in any order', async () => {
    const options = { seed: 3, width: 64, height: 64 };
    const a = await trainFilterBankModel(small, options);
    const b = await trainFilterBankModel([...small].reverse(), options);
    expect(Buffer.from(b.onnx).equals(Buffer.from(a.onnx))).toBe(true);
    expect(b.contract).toEqual(a.contract);
    const c = await trainFilterBankModel(small, { ...options, seed: 4 });
    expect(c.contract.datasetFingerprint).toBe(a.contract.datasetFingerprint);
    expect(Buffer.from(c.onnx).equals(Buffer.from(a.onnx))).toBe(false);
  });

  it('falls back to in-sample good scores when only one good image exists', async () => {
    const oneGood = [
      small.find((s) => s.label === 'good') as TrainingSample,
      ...small.filter((s) => s.label === 'defect'),
    ];
    const model = await trainFilterBankModel(oneGood, { seed: 1, width: 64, height: 64 });
    expect(model.contract.training?.thresholdFrom).toBe('train-good+validation');
    expect(model.referenceScores).toHaveLength(1);
    expect(Number.isFinite(model.contract.threshold)).toBe(true);
  });

  it('rejects unusable datasets with ERR_DATASET and bad options with ERR_TRAINING', async () => {
    const empty = await rejection(trainFilterBankModel([], { seed: 1 }));
    expect(isLinesightError(empty, 'ERR_DATASET')).toBe(true);
    expect((empty as Error).message).toMatch(/no samples/);
    const defectsOnly = await rejection(
      trainFilterBankModel(
        small.filter((s) => s.label === 'defect'),
        { seed: 1 },
      ),
    );
    expect(isLinesightError(defectsOnly, 'ERR_DATASET')).toBe(true);
    expect((defectsOnly as Error).message).toMatch(/no good samples/);
    const corrupt = await rejection(
      trainFilterBankModel(
        [...small, { image: Buffer.from('not an image'), label: 'good', className: 'good' }],
        { seed: 1, width: 64, height: 64 },
      ),
    );
    expect(isLinesightError(corrupt, 'ERR_DATASET')).toBe(true);
    expect(isLinesightError((corrupt as Error).cause, 'ERR_IMAGE_DECODE')).toBe(true);
    const badOptions = await rejection(
      trainFilterBankModel(small, { seed: 1.5, width: 10, validationShare: 1 }),
    );
    expect(isLinesightError(badOptions, 'ERR_TRAINING')).toBe(true);
    expect((isLinesightError(badOptions) && badOptions.details?.problems) as string[]).toHaveLength(
      3,
    );
  });
});
