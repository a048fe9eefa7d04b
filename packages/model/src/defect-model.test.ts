import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { greyInputSpec, isLinesightError, sha256Hex } from '@linesight/protocol';
import { OnnxModel, decodeImagePixels, rawToTensor, readModelContract } from '@linesight/vision';
import { pyramidModelForward, trainDefectModel, type TrainedDefectModel } from './defect-model.ts';
import { samplesSeenInTraining } from './dataset-split.ts';
import { PADIM_FUSION_WEIGHT } from './padim-fusion.ts';
import { PADIM_NEIGHBOURS } from './padim-neighbours.ts';
import {
  exportPyramidModelOnnx,
  type CellClassifierParams,
  type PyramidModelParams,
  type ScoreFusion,
} from './pyramid-graph.ts';
import { PADIM_MAP_BLUR_PASSES } from './padim-map.ts';
import { evaluateModel } from './evaluate.ts';
import type { TrainingProgress } from './training-result.ts';
import { createRandom } from './random.ts';
import { paintSyntheticAnomaly, type SyntheticAnomalyKind } from './synthetic-anomalies.ts';
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

/** The largest score and map differences between ONNX Runtime and the trainer's reference pass. */
async function parityGap(
  trained: TrainedDefectModel,
  samples: readonly TrainingSample[],
): Promise<{ worstScore: number; worstMap: number; mapWidth: number | undefined }> {
  const model = await OnnxModel.load(trained.onnx);
  try {
    let worstScore = 0;
    let worstMap = 0;
    let mapWidth: number | undefined;
    for (const sample of samples) {
      const onnx = await model.scoreImage(sample.image);
      const spec = model.contract.inputSpec;
      const reference = pyramidModelForward(
        rawToTensor(await decodeImagePixels(sample.image, spec), spec),
        trained.params,
      );
      worstScore = Math.max(worstScore, Math.abs(onnx.score - reference.score));
      mapWidth = onnx.map?.width;
      const map = onnx.map?.data ?? new Float32Array();
      for (let i = 0; i < map.length; i++)
        worstMap = Math.max(
          worstMap,
          Math.abs((map[i] as number) - (reference.map.data[i] as number)),
        );
    }
    return { worstScore, worstMap, mapWidth };
  } finally {
    await model.close();
  }
}

// Small and fast: 128 px textures at model size 128 (16 x 16 cells), few epochs.
const FAST = { size: 128, epochs: 8, hidden: 8, minTrainingSteps: 200 } as const;
/** A whole training in a test or hook: seconds on a quiet machine, minutes beside a loaded CI run. */
const TRAINING_TIMEOUT_MS = 400_000;

/**
 * The 128 px good samples given, every second one with a painted synthetic
 * defect of the kind `kindOf(k)` and its mask (the others with an empty mask).
 */
async function paintedSamples(
  goods: readonly TrainingSample[],
  seed: number,
  kindOf: (k: number) => SyntheticAnomalyKind,
): Promise<TrainingSample[]> {
  const random = createRandom(seed);
  const spec = greyInputSpec(128);
  const raw = { raw: { width: 128, height: 128, channels: 1 as const } };
  const out: TrainingSample[] = [];
  for (const [k, sample] of goods.entries()) {
    const pixels = Float32Array.from(await decodeImagePixels(sample.image, spec), (p) => p / 255);
    const defect = k % 2 === 1;
    const painted = defect
      ? paintSyntheticAnomaly(pixels, pixels, 128, kindOf(k), random)
      : { image: pixels, mask: new Uint8Array(128 * 128) };
    out.push({
      image: await sharp(
        Uint8Array.from(painted.image, (v) => Math.round(v * 255)),
        raw,
      )
        .jpeg({ quality: 92 })
        .toBuffer(),
      label: defect ? 'defect' : 'good',
      className: defect ? kindOf(k) : 'good',
      mask: await sharp(
        Uint8Array.from(painted.mask, (v) => v * 255),
        raw,
      )
        .png()
        .toBuffer(),
    });
  }
  return out;
}

describe('trainDefectModel', () => {
  let train: TrainingSample[];
  let test: TrainingSample[];
  let trained: TrainedDefectModel;
  const progress: TrainingProgress[] = [];

  beforeAll(async () => {
    train = await generateSyntheticSamples({
      seed: 11,
      good: 60,
      defects: { spot: 15, scratch: 15 },
      format: 'jpeg',
    });
    test = await generateSyntheticSamples({
      seed: 12,
      good: 40,
      defects: { spot: 20, scratch: 20 },
      format: 'jpeg',
    });
    trained = await trainDefectModel(train, {
      seed: 3,
      name: 'texture',
      ...FAST,
      onProgress: (p) => progress.push(p),
    });
  });

  it('separates defects from good images on a fresh test set (supervised)', async () => {
    expect(trained.mode).toBe('supervised');
    const evaluation = await evaluateModel(trained.onnx, test);
    expect(evaluation.images).toBe(80);
    expect(evaluation.auroc).toBeGreaterThan(0.9);
    expect(evaluation.perClass.spot).toBeGreaterThan(0.85);
    expect(evaluation.perClass.scratch).toBeGreaterThan(0.85);
    expect(evaluation.pixelAuroc).toBeNull();
  });

  it('fills the contract and embeds it in the ONNX file', () => {
    const { contract } = trained;
    expect(readModelContract(trained.onnx)).toEqual(contract);
    expect(contract).toMatchObject({
      kind: 'pyramid-cell-classifier',
      name: 'texture',
      outputs: { score: 'score', map: 'map' },
      inputSpec: {
        width: 128,
        height: 128,
        channels: 1,
        resize: 'fill',
        layout: 'NCHW',
        mean: [0],
        std: [1],
      },
    });
    expect(contract.training).toMatchObject({
      mode: 'supervised',
      seed: 3,
      samples: 90,
      trainGood: 48,
      trainDefect: 24,
      trainSynthetic: 24,
      validationGood: 12,
      validationDefect: 6,
      thresholdRule: 'max-f1',
      thresholdFrom: 'validation',
    });
    expect(contract.datasetFingerprint).toMatch(/^[0-9a-f]{64}$/);
    // Every image it was given, by hash prefix, so `model eval` can name shared images.
    expect(contract.trainingImages).toHaveLength(
      new Set(train.map((s) => sha256Hex(s.image))).size,
    );
    expect(samplesSeenInTraining(contract.trainingImages, train)).toHaveLength(train.length);
    expect(samplesSeenInTraining(contract.trainingImages, test)).toEqual([]);
    const profile = contract.referenceProfile;
    expect(profile?.score.counts.reduce((a, b) => a + b, 0)).toBe(12);
    expect(profile?.meanIntensity?.counts.reduce((a, b) => a + b, 0)).toBe(12);
    expect(profile?.contrast?.counts.reduce((a, b) => a + b, 0)).toBe(12);
    expect(trained.metrics.images).toBe(18);
    expect(new Set(progress.map((p) => p.step))).toEqual(
      new Set(['decode', 'features', 'fit', 'validate', 'export']),
    );
    const fit = progress.filter((p) => p.step === 'fit');
    expect(fit.at(-1)?.epoch).toBe(fit.at(-1)?.epochs);
    expect(fit.at(-1)?.epochs).toBeGreaterThanOrEqual(8);
    expect(fit.at(-1)?.loss).toBeGreaterThan(0);
  });

  it('gives the same scores and maps through ONNX Runtime as the trainer (parity)', async () => {
    // The fused PaDiM is anomaly mode's: peaks max-pooled, scored by the top cells (4 of 64
    // at 128 px) minus the median cell of the distance to the nearest good neighbour.
    const fusion = trained.params.kind === 'cell-classifier' ? trained.params.fusion : undefined;
    expect(fusion?.padim).toMatchObject({
      maxPooled: { first: 64, count: 32 },
      scoreTop: 4,
      scoreMinusMedian: true,
    });
    expect(fusion?.padim.neighbours?.count).toBeGreaterThan(1);
    expect(fusion?.padim.neighbours?.count).toBeLessThanOrEqual(PADIM_NEIGHBOURS);
    expect(trained.contract.training).toMatchObject({
      padimPeakPooling: 'max',
      padimScoreTop: 4,
      padimScoreMinusMedian: true,
      padimNeighbours: fusion?.padim.neighbours?.count,
      padimWeight: PADIM_FUSION_WEIGHT,
    });
    const gap = await parityGap(trained, [
      ...test.slice(0, 8),
      ...test.slice(-8),
      ...train.slice(0, 4),
    ]);
    expect(gap.mapWidth).toBe(16);
    expect(gap.worstScore).toBeLessThan(1e-4);
    expect(gap.worstMap).toBeLessThan(1e-3);
  });

  describe('with defect masks', () => {
    // Good textures, half of them with a painted smudge or shading patch and its mask.
    const masked = (goods: TrainingSample[], seed: number) =>
      paintedSamples(goods, seed, (k) => (k % 4 === 1 ? 'smudge' : 'shading'));
    const options = { seed: 3, name: 'texture', ...FAST };
    let trainMasked: TrainingSample[];
    let testMasked: TrainingSample[];
    let headMap: TrainedDefectModel;

    beforeAll(async () => {
      trainMasked = await masked(
        train.filter((s) => s.label === 'good'),
        21,
      );
      testMasked = await masked(
        test.filter((s) => s.label === 'good'),
        22,
      );
      headMap = await trainDefectModel(trainMasked, { ...options, map: 'masks' });
    }, TRAINING_TIMEOUT_MS);

    it('learns the map from them: a score in 0..1 per cell, the same through ONNX Runtime', async () => {
      expect(headMap.contract.training?.['map']).toMatch(/map head/);
      expect(Number(headMap.contract.training?.['mapHeadMasks'])).toBeGreaterThanOrEqual(15);
      const fusion = headMap.params.kind === 'cell-classifier' ? headMap.params.fusion : undefined;
      expect(fusion?.mapHead?.head.inputs).toBe(98); // PaDiM's 97 channels and its distance
      // The same model with PaDiM's map: its graph without the map head.
      const padimOnnx = exportPyramidModelOnnx(
        { ...headMap.params, fusion: { ...fusion, mapHead: undefined } } as PyramidModelParams,
        headMap.contract,
      );
      const scores = { head: [] as number[], padim: [] as number[] };
      const withHead = await evaluateModel(headMap.onnx, testMasked, {
        onScore: (_, s) => scores.head.push(s),
      });
      const withPadim = await evaluateModel(padimOnnx, testMasked, {
        onScore: (_, s) => scores.padim.push(s),
      });
      // The map head's branch leaves the score alone.
      expect(scores.head).toHaveLength(40);
      scores.head.forEach((s, i) => expect(s).toBe(scores.padim[i]));
      // Both maps find the patches; on these noise textures PaDiM's Gaussian is exact, so the
      // head does not beat it here (it does on MTD, see the README, and in map-head.test.ts).
      expect(withPadim.pixelAuroc).toBeGreaterThan(0.9);
      expect(withHead.pixelAuroc).toBeGreaterThan(0.9);

      const gap = await parityGap(headMap, [...testMasked.slice(0, 6), ...testMasked.slice(-6)]);
      expect(gap.mapWidth).toBe(16);
      expect(gap.worstScore).toBeLessThan(1e-4);
      expect(gap.worstMap).toBeLessThan(1e-4);
      const spec = headMap.contract.inputSpec;
      const last = testMasked.at(-1)?.image as Buffer;
      const map = pyramidModelForward(
        rawToTensor(await decodeImagePixels(last, spec), spec),
        headMap.params,
      ).map.data;
      expect(Math.min(...map)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...map)).toBeLessThanOrEqual(1);
      // The contract says so, and a device's heatmap reads it from the map ONNX Runtime gives.
      expect(headMap.contract.mapScale).toBe(1);
      expect(trained.contract.mapScale).toBeUndefined();
      const model = await OnnxModel.load(headMap.onnx);
      try {
        expect((await model.scoreImage(last)).map?.scale).toBe(1);
      } finally {
        await model.close();
      }
    });

    it(
      'keeps the map head by default only where it ranks the validation defects higher; masks change nothing else',
      async () => {
        const auto = await trainDefectModel(trainMasked, options);
        const compared = auto.contract.training?.['mapValidationPixelAuroc'] as {
          padim: number;
          mapHead: number;
        };
        expect(compared.padim).toBeGreaterThan(0.5);
        expect(compared.mapHead).toBeGreaterThan(0.5);
        const headWins = compared.mapHead > compared.padim;
        expect(auto.contract.training?.['map']).toMatch(headWins ? /map head/ : /PaDiM/);
        // The classifier, PaDiM, fusion and threshold are those of the model trained with the head.
        const strip = (m: TrainedDefectModel) => {
          const params = m.params as CellClassifierParams;
          const { mapHead, ...fusion } = params.fusion as ScoreFusion;
          return { params: { ...params, fusion }, mapHead };
        };
        expect(strip(auto).params).toEqual(strip(headMap).params);
        expect(strip(auto).mapHead).toEqual(headWins ? strip(headMap).mapHead : undefined);
        expect(auto.contract.threshold).toBe(headMap.contract.threshold);
      },
      TRAINING_TIMEOUT_MS,
    );
  });

  it('learns from good images alone (anomaly mode, auto-selected) and reports pixel AUROC with masks', async () => {
    const goodOnly = train.filter((s) => s.label === 'good');
    const model = await trainDefectModel(goodOnly, { seed: 3, ...FAST });
    expect(model.mode).toBe('anomaly');
    expect(model.contract.training).toMatchObject({
      mode: 'anomaly',
      trainDefect: 0,
      thresholdRule: 'good-quantile',
    });
    expect(model.metrics.auroc).toBeNull();
    // Test images with painted defects and their masks.
    const images = await paintedSamples(
      test.filter((s) => s.label === 'good'),
      9,
      () => 'blob',
    );
    const result = await evaluateModel(model.onnx, [
      ...images,
      ...test.filter((s) => s.label === 'defect'),
    ]);
    expect(result.auroc).toBeGreaterThan(0.85);
    expect(result.pixelAuroc).toBeGreaterThan(0.8);

    // The PaDiM scorer: ONNX Runtime gives the trainer's scores and maps.
    expect(model.contract.kind).toBe('pyramid-padim');
    expect(model.params.kind).toBe('padim');
    // Its peak channels are max-pooled to PaDiM's grid, in the graph as in the trainer.
    expect(model.params.kind === 'padim' && model.params.padim.maxPooled).toEqual({
      first: 64,
      count: 32,
    });
    const gap = await parityGap(model, [...images.slice(0, 6), ...test.slice(-4)]);
    // PaDiM's 8x8 distances, blurred and upsampled to the 16x16 feature grid.
    expect(model.params.kind === 'padim' && model.params.padim.mapBlurPasses).toBe(
      PADIM_MAP_BLUR_PASSES,
    );
    expect(gap.mapWidth).toBe(16);
    expect(gap.worstScore).toBeLessThan(1e-4);
    expect(gap.worstMap).toBeLessThan(1e-4);
  });
});

describe('trainDefectModel determinism and errors', () => {
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
    const options = { seed: 3, size: 64, levels: 3, epochs: 2, hidden: 4, minTrainingSteps: 0 };
    const a = await trainDefectModel(small, options);
    const b = await trainDefectModel([...small].reverse(), options);
    expect(Buffer.from(b.onnx).equals(Buffer.from(a.onnx))).toBe(true);
    const goodOnly = small.filter((s) => s.label === 'good');
    const anomalyA = await trainDefectModel(goodOnly, options);
    const anomalyB = await trainDefectModel([...goodOnly].reverse(), options);
    expect(anomalyA.mode).toBe('anomaly');
    expect(Buffer.from(anomalyB.onnx).equals(Buffer.from(anomalyA.onnx))).toBe(true);
    const c = await trainDefectModel(small, { ...options, seed: 4 });
    expect(c.contract.datasetFingerprint).toBe(a.contract.datasetFingerprint);
    expect(Buffer.from(c.onnx).equals(Buffer.from(a.onnx))).toBe(false);
  });

  it('produces the same bytes on one thread as on two (features and classifier)', async () => {
    const options = { seed: 3, size: 64, levels: 3, epochs: 2, hidden: 4, minTrainingSteps: 0 };
    const one = await trainDefectModel(small, { ...options, threads: 1 });
    const two = await trainDefectModel(small, { ...options, threads: 2 });
    // Synthetic defects are painted on the way, in the seed's order on either path.
    expect(Number(one.contract.training?.['trainSynthetic'])).toBeGreaterThan(0);
    expect(Buffer.from(two.onnx).equals(Buffer.from(one.onnx))).toBe(true);
  });

  it('rejects unusable datasets with ERR_DATASET and bad options with ERR_TRAINING', async () => {
    const empty = await rejection(trainDefectModel([], { seed: 1 }));
    expect(isLinesightError(empty, 'ERR_DATASET')).toBe(true);
    expect((empty as Error).message).toMatch(/no samples/);
    const defectsOnly = await rejection(
      trainDefectModel(
        small.filter((s) => s.label === 'defect'),
        { seed: 1 },
      ),
    );
    expect(isLinesightError(defectsOnly, 'ERR_DATASET')).toBe(true);
    expect((defectsOnly as Error).message).toMatch(/no good samples/);
    const oneClass = await rejection(
      trainDefectModel(
        small.filter((s) => s.label === 'good'),
        { seed: 1, mode: 'supervised' },
      ),
    );
    expect(isLinesightError(oneClass, 'ERR_DATASET')).toBe(true);
    const masksWithoutDefects = await rejection(
      trainDefectModel(
        small.filter((s) => s.label === 'good'),
        { seed: 1, map: 'masks' },
      ),
    );
    expect(isLinesightError(masksWithoutDefects, 'ERR_TRAINING')).toBe(true);
    expect((masksWithoutDefects as Error).message).toMatch(/map: masks needs a supervised model/);
    expect((oneClass as Error).message).toMatch(/only one class/);
    const twoGood = await rejection(
      trainDefectModel(
        [
          ...small.filter((s) => s.label === 'good').slice(0, 2),
          ...small.filter((s) => s.label === 'defect'),
        ],
        { seed: 1, size: 64, levels: 3, epochs: 1, minTrainingSteps: 0 },
      ),
    );
    expect(isLinesightError(twoGood, 'ERR_DATASET')).toBe(true);
    expect((twoGood as Error).message).toMatch(/only 1 of the 2 good images are left for training/);
    const corrupt = await rejection(
      trainDefectModel(
        [...small, { image: Buffer.from('not an image'), label: 'good', className: 'good' }],
        { seed: 1, size: 64, levels: 3, epochs: 1, minTrainingSteps: 0 },
      ),
    );
    expect(isLinesightError(corrupt, 'ERR_DATASET')).toBe(true);
    const badOptions = await rejection(
      trainDefectModel(small, { seed: 1.5, size: 100, epochs: 0 }),
    );
    expect(isLinesightError(badOptions, 'ERR_TRAINING')).toBe(true);
    expect((isLinesightError(badOptions) && badOptions.details?.problems) as string[]).toHaveLength(
      3,
    );
  });
});
