import { availableParallelism } from 'node:os';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { LinesightError, greyInputSpec, sha256Hex, type InputSpec } from '@linesight/protocol';
import {
  decodeImagePixels,
  rawToTensor,
  tensorStatistics,
  type ModelContract,
} from '@linesight/vision';
import {
  headCellLogits,
  logMeanExp,
  mergeHeads,
  trainCellHead,
  type CellHead,
  type HeadExample,
} from './cell-head.ts';
import {
  datasetFingerprint,
  splitDataset,
  trainingImageHashes,
  type HoldoutRecord,
} from './dataset-split.ts';
import { HeadGradientPool } from './head-gradient-pool.ts';
import type { TrainedModel, TrainingProgress } from './training-result.ts';
import { fixedHistogram } from './histogram.ts';
import { windowReference } from './window-reference.ts';
import { mapConcurrent } from './map-concurrent.ts';
import { computeMetrics } from './metrics.ts';
import {
  exportPyramidModelOnnx,
  fuseScores,
  type CellClassifierParams,
  type PadimModelParams,
  type PyramidModelParams,
  type ScoreFusion,
} from './pyramid-graph.ts';
import {
  baseChannels,
  featureChannels,
  featureNames,
  gridSide,
  peakChannels,
  pyramidFeatures,
  pyramidKernels,
  type PyramidGeometry,
} from './pyramid-features.ts';
import {
  PADIM_MIN_SHRINKAGE,
  fitPadim,
  padimFeatures,
  padimGrid,
  padimMap,
  padimScore,
} from './padim.ts';
import { createRandom } from './random.ts';
import { SYNTHETIC_ANOMALY_KINDS, paintSyntheticAnomaly } from './synthetic-anomalies.ts';
import { headInputs, standardizeCells } from './standardize.ts';
import { chooseThreshold, quantile } from './threshold.ts';
import type { TrainingSample } from './training-sample.ts';

/** How the model learns: from labelled defects, from good images alone, or whichever the data allows. */
export type TrainingMode = 'supervised' | 'anomaly' | 'auto';

/** Options of the defect-model trainer. */
export interface DefectModelOptions {
  /** Drives the split, synthetic defects and initialization; same samples and seed give identical bytes. */
  seed: number;
  /** 'auto' (default): supervised when defect examples exist, else anomaly. */
  mode?: TrainingMode;
  /** Model input side in pixels (square, 'fill' resize); a multiple of 8, 256 unless given. */
  size?: number;
  /** Pyramid levels; 4 unless given. */
  levels?: number;
  /** Hidden units of the cell classifier; 16 unless given. */
  hidden?: number;
  /**
   * Cell classifiers trained with different seeds and averaged (merged into
   * one wider classifier in the graph, so inference costs little more); 1 unless given.
   * Each member adds its full training time.
   */
  members?: number;
  /** Training epochs of the cell classifier; 30 unless given (more on small datasets, see MIN_TRAINING_STEPS). */
  epochs?: number;
  /** Share of each class held out for validation and the threshold; 0.2 unless given. */
  validationShare?: number;
  /**
   * Synthetic defects painted on good training images, per good training image,
   * for the supervised classifier: 0.5 unless given (anomaly mode fits good images only).
   */
  syntheticPerGood?: number;
  /** Mini-batches the classifier sees at least (small datasets get more epochs); 600 unless given. */
  minTrainingSteps?: number;
  /** Model name recorded in the contract. */
  name?: string;
  /** The split of a larger folder these samples are the training part of (recorded as `training.holdout`). */
  holdout?: HoldoutRecord;
  /**
   * Threads that compute the classifier's gradients: 2 unless given (1 on a
   * one-core machine). The model's bytes do not depend on it.
   */
  threads?: number;
  onProgress?: (progress: TrainingProgress) => void;
}

/** A trained pyramid defect model with its parameters (for the reference forward pass). */
export interface TrainedDefectModel extends TrainedModel {
  params: PyramidModelParams;
  mode: 'supervised' | 'anomaly';
}

const TRAINER = 'linesight-pyramid/1';
const DECODE_CONCURRENCY = 4;
const SCORE_BINS = 20;
/** Added to each cell's feature std: a channel flat on good images cannot blow up. */
const STD_FLOOR = 0.05;
/** Share of the loss weight given to synthetic defects in supervised mode. */
const SYNTHETIC_LOSS_SHARE = 0.3;
/** Small datasets get more epochs, so that the classifier sees at least this many mini-batches. */
const MIN_TRAINING_STEPS = 600;
const BATCH_SIZE = 16;
/** Adam step size of the cell classifier (0.01 measured better than 0.003 on MTD with relative features). */
const LEARNING_RATE = 0.01;
/**
 * Weight of PaDiM's normalized score next to the classifier's in supervised
 * mode. On MTD (three held-out splits, cached features) weights 1, 0.5 and
 * 0.25 all beat the classifier alone (mean +0.007, +0.014, +0.014).
 */
const PADIM_FUSION_WEIGHT = 0.5;
/**
 * Anomaly mode's image score: the mean of PaDiM's largest cells (this many
 * of 256; scaled with the grid) minus the median cell. On MTD (5 folds,
 * max-pooled peaks) the maximum gave 0.872, the top 4 cells 0.884; minus the
 * median, the top 4 / 8 / 12 / 16 / 24 / 32 cells 0.900 / 0.908 / 0.911 /
 * 0.911 / 0.911 / 0.911.
 */
const PADIM_SCORE_TOP = 16;
/** The two finest levels also get max-pooled energies: thin cracks vanish in an 8x8 average. */
const MAX_POOL_LEVELS = 2;

/**
 * Trains the Linesight defect model on multi-scale filter-bank cell features.
 * Supervised: the features are standardized per cell position against good
 * training images and a small cell classifier learns from image labels (real
 * defects plus synthetic ones). Anomaly (good images only): a per-position
 * Gaussian of the good parts' features scores cells by Mahalanobis distance
 * (`padim.ts`). The threshold comes from a validation split held out of
 * training. Throws ERR_DATASET for an unusable dataset and ERR_TRAINING for
 * bad options.
 */
export async function trainDefectModel(
  samples: readonly TrainingSample[],
  options: DefectModelOptions,
): Promise<TrainedDefectModel> {
  const started = performance.now();
  const size = options.size ?? 256;
  const levels = options.levels ?? 4;
  const hidden = options.hidden ?? 16;
  const members = options.members ?? 1;
  const epochs = options.epochs ?? 30;
  const validationShare = options.validationShare ?? 0.2;
  checkOptions({ ...options, size, levels, hidden, epochs, validationShare, members });
  const report = options.onProgress ?? (() => undefined);

  if (samples.length === 0) throw new LinesightError('ERR_DATASET', 'dataset has no samples');
  const goodCount = samples.filter((s) => s.label === 'good').length;
  const defectCount = samples.length - goodCount;
  if (goodCount === 0) {
    throw new LinesightError(
      'ERR_DATASET',
      `dataset has no good samples (of ${samples.length}); the model learns what good looks like first`,
    );
  }
  const requested = options.mode ?? 'auto';
  const mode = requested === 'auto' ? (defectCount > 0 ? 'supervised' : 'anomaly') : requested;
  if (mode === 'supervised' && defectCount === 0) {
    throw new LinesightError(
      'ERR_DATASET',
      `supervised training needs defect examples, but the dataset has only one class (${goodCount} good images); add defect folders or use --mode anomaly`,
    );
  }
  if (goodCount < 2) {
    throw new LinesightError(
      'ERR_DATASET',
      `dataset has ${goodCount} good image; at least 2 are needed`,
    );
  }

  // Anomaly mode scores base features with a per-position Gaussian (see padim.ts),
  // which makes its pooled features relative itself; the classifier gets relative channels.
  const geometry: PyramidGeometry = {
    size,
    levels,
    kernels: pyramidKernels(),
    maxPoolLevels: MAX_POOL_LEVELS,
    ...(mode === 'supervised' ? { relative: true } : {}),
  };
  const hashes = samples.map((s) => sha256Hex(s.image));
  const split = splitDataset(samples, { seed: options.seed, validationShare, sha256: hashes });
  const isDefect = (i: number): boolean => samples[i]?.label === 'defect';
  const trainGood = split.train.filter((i) => !isDefect(i));
  const trainDefect = mode === 'supervised' ? split.train.filter(isDefect) : [];
  const validation = split.validation;
  if (trainGood.length < 2) {
    throw new LinesightError(
      'ERR_DATASET',
      `only ${trainGood.length} of the ${goodCount} good images are left for training after holding out ${Math.round(validationShare * 100)} % for validation; the model needs at least 2 to learn what good looks like (add good images)`,
    );
  }

  const inputSpec = greyInputSpec(size);
  const needed = [...trainGood, ...trainDefect, ...validation];
  let decoded = 0;
  const pixelList = await mapConcurrent(needed, DECODE_CONCURRENCY, async (index) => {
    const pixels = await decodeSample(samples, index, inputSpec);
    report({ step: 'decode', done: ++decoded, total: needed.length });
    return pixels;
  });
  const tensors = new Map(
    needed.map((index, k) => [index, rawToTensor(pixelList[k] as Uint8Array, inputSpec)]),
  );

  // Synthetic defects, painted on good training images in the canonical split order.
  const random = createRandom(options.seed ^ 0x5eed);
  const perGood = mode === 'anomaly' ? 0 : (options.syntheticPerGood ?? 0.5);
  const syntheticCount = Math.round(trainGood.length * perGood);
  const featureJobs = needed.length + syntheticCount;
  let featured = 0;
  const featuresOf = async (input: Float32Array): Promise<Float32Array> => {
    await yieldToEventLoop();
    const out = pyramidFeatures(input, geometry).data;
    report({ step: 'features', done: ++featured, total: featureJobs });
    return out;
  };
  const trainFeatures: TrainFeatures[] = [];
  for (const i of [...trainGood, ...trainDefect])
    trainFeatures.push({
      features: await featuresOf(tensors.get(i) as Float32Array),
      defect: isDefect(i),
      synthetic: false,
    });
  for (let n = 0; n < syntheticCount; n++) {
    const base = tensors.get(
      trainGood[Math.floor(random() * trainGood.length)] as number,
    ) as Float32Array;
    const donor = tensors.get(
      trainGood[Math.floor(random() * trainGood.length)] as number,
    ) as Float32Array;
    const kind = SYNTHETIC_ANOMALY_KINDS[
      n % SYNTHETIC_ANOMALY_KINDS.length
    ] as (typeof SYNTHETIC_ANOMALY_KINDS)[number];
    const { image } = paintSyntheticAnomaly(base, donor, size, kind, random);
    trainFeatures.push({ features: await featuresOf(image), defect: true, synthetic: true });
  }
  const validationFeatures: Float32Array[] = [];
  for (const i of validation)
    validationFeatures.push(await featuresOf(tensors.get(i) as Float32Array));

  // Anomaly mode pools the peak channels to PaDiM's grid by their maximum and
  // scores the mean of the top cells (see PADIM_SCORE_TOP); supervised mode keeps
  // the pooling and maximum its fusion weight was measured with.
  const padim = fitPadimScorer(
    trainFeatures,
    geometry,
    report,
    mode === 'anomaly' ? { maxPoolPeaks: true, scoreTop: PADIM_SCORE_TOP, minusMedian: true } : {},
  );
  const scorer: FittedScorer =
    mode === 'anomaly'
      ? padim
      : fuseWithPadim(
          await fitClassifier(trainFeatures, geometry, {
            seed: options.seed,
            hidden,
            members,
            epochs,
            minTrainingSteps: options.minTrainingSteps ?? MIN_TRAINING_STEPS,
            threads: options.threads ?? Math.min(2, availableParallelism()),
            report,
          }),
          padim,
          normalizationGoods(
            validationFeatures.filter((_, k) => !isDefect(validation[k] as number)),
            trainFeatures.filter((t) => !t.defect).map((t) => t.features),
          ),
        );
  trainFeatures.length = 0;
  const params = scorer.params;

  const validationScores: number[] = [];
  const score = scoreOf(params);
  for (const [k, f] of validationFeatures.entries()) {
    validationScores.push(score(f));
    report({ step: 'validate', done: k + 1, total: validation.length });
  }
  const validationLabels = validation.map(isDefect);
  const validationGood = validation.filter((i) => !isDefect(i));
  const referenceScores = validationScores.filter((_, k) => !validationLabels[k]);
  const choice = validationLabels.some(Boolean)
    ? chooseThreshold(validationScores, validationLabels)
    : goodQuantileThreshold(referenceScores);
  const threshold = round6(choice.threshold);
  const metrics = computeMetrics(validationScores, validationLabels, threshold);

  const statistics = validationGood.map((i) =>
    tensorStatistics(tensors.get(i) as Float32Array, inputSpec),
  );
  const low = Math.min(threshold, ...referenceScores);
  const high = Math.max(threshold, ...referenceScores);
  const margin = Math.max(1e-3, (high - low) * 0.25);
  const contract: ModelContract = {
    schema: 'linesight.model/v1',
    kind: params.kind === 'padim' ? 'pyramid-padim' : 'pyramid-cell-classifier',
    name: options.name ?? 'defect-model',
    inputSpec,
    outputs: { score: 'score', map: 'map' },
    threshold,
    training: {
      trainer: TRAINER,
      mode,
      requestedMode: requested,
      seed: options.seed,
      samples: samples.length,
      trainGood: trainGood.length,
      trainDefect: trainDefect.length,
      trainSynthetic: syntheticCount,
      validationGood: validationGood.length,
      validationDefect: validation.length - validationGood.length,
      validationShare,
      size,
      levels,
      maxPoolLevels: Math.min(MAX_POOL_LEVELS, levels - 1),
      kernels: geometry.kernels.map((k) => k.name),
      features: featureNames(geometry).length,
      grid: gridSide(geometry),
      ...scorer.summary,
      thresholdRule: choice.rule,
      thresholdFrom: 'validation',
      validation: metrics,
      ...(options.holdout !== undefined ? { holdout: options.holdout } : {}),
    },
    datasetFingerprint: datasetFingerprint(samples, hashes),
    trainingImages: trainingImageHashes(hashes),
    referenceProfile: {
      score: fixedHistogram(
        referenceScores,
        round6(low - margin),
        round6(high + margin),
        SCORE_BINS,
      ),
      meanIntensity: fixedHistogram(
        statistics.map((s) => s.meanIntensity),
        0,
        256,
        16,
      ),
      contrast: fixedHistogram(
        statistics.map((s) => s.contrast),
        0,
        128,
        16,
      ),
      // Device windows are compared with this bin for bin (cloud drift job).
      window: windowReference({
        tensors: tensors.values(),
        inputSpec,
        threshold,
        goodScores: referenceScores,
        validationScores,
      }),
    },
  };
  report({ step: 'export', done: 0, total: 1 });
  const onnx = exportPyramidModelOnnx(params, contract);
  report({ step: 'export', done: 1, total: 1 });
  return {
    onnx,
    contract,
    metrics,
    referenceScores,
    trainingMs: performance.now() - started,
    params,
    mode,
  };
}

/** A fitted scorer of cell features: its graph parameters and its contract summary. */
interface FittedScorer<P extends PyramidModelParams = PyramidModelParams> {
  params: P;
  summary: Record<string, unknown>;
}

/** The image score of pyramid features under `params`, as the exported graph computes it. */
const scoreOf = (params: PyramidModelParams) => (f: Float32Array) => scoreFeatures(f, params).score;

/** A training image's cell features. */
interface TrainFeatures {
  features: Float32Array;
  defect: boolean;
  synthetic: boolean;
}

/** Anomaly mode: a per-position Gaussian of the good training parts (see padim.ts). */
function fitPadimScorer(
  trainFeatures: readonly TrainFeatures[],
  geometry: PyramidGeometry,
  report: (progress: TrainingProgress) => void,
  options: { maxPoolPeaks?: boolean; scoreTop?: number; minusMedian?: boolean },
): FittedScorer<PadimModelParams> {
  const started = performance.now();
  // PaDiM reads the base channels only (the first ones when relative channels follow).
  const channels = baseChannels(geometry);
  const grid = gridSide(geometry);
  const peaks = options.maxPoolPeaks === true ? peakChannels(geometry) : undefined;
  const pooled = trainFeatures
    .filter((t) => !t.defect)
    .map((t) => padimFeatures(t.features, channels, grid, peaks));
  const padim = fitPadim(
    pooled,
    channels,
    padimGrid(grid),
    (done, total) => {
      if (done % 16 === 0 || done === total)
        report({ step: 'fit', done, total, elapsedMs: performance.now() - started });
    },
    peaks,
  );
  // The top cells cover the same share of the part at any model size.
  const top = Math.max(1, Math.round(((options.scoreTop ?? 1) * padim.grid ** 2) / 256));
  if (top > 1) padim.scoreTop = top;
  if (options.minusMedian === true) padim.scoreMinusMedian = true;
  return {
    params: { kind: 'padim', geometry, padim },
    summary: {
      scorer: 'padim',
      padimGrid: padim.grid,
      padimMinShrinkage: PADIM_MIN_SHRINKAGE,
      padimPeakPooling: peaks !== undefined ? 'max' : 'mean',
      padimScoreTop: padim.scoreTop ?? 1,
      padimScoreMinusMedian: padim.scoreMinusMedian === true,
      scoreUnit: `Mahalanobis distance squared per channel (${(padim.scoreTop ?? 1) > 1 ? `mean of the ${padim.scoreTop} largest cells` : 'maximum over cells'}${padim.scoreMinusMedian === true ? ' minus the median cell' : ''})`,
    },
  };
}

/** Fewer good validation images than this cannot give a score spread; training ones join them. */
const MIN_NORMALIZATION_GOODS = 5;

/**
 * The good images whose scores normalize the fused score: the validation ones,
 * or with fewer than MIN_NORMALIZATION_GOODS of those, all good images (the
 * training ones score a little low on the classifier, but a spread of one
 * image is none).
 */
function normalizationGoods(
  validationGood: Float32Array[],
  trainGood: Float32Array[],
): { features: Float32Array[]; from: 'validation' | 'training+validation' } {
  return validationGood.length >= MIN_NORMALIZATION_GOODS
    ? { features: validationGood, from: 'validation' }
    : { features: [...validationGood, ...trainGood], from: 'training+validation' };
}

/**
 * Supervised mode adds PaDiM's score to the classifier's, each normalized by
 * its mean and spread on good images, PaDiM at PADIM_FUSION_WEIGHT.
 */
function fuseWithPadim(
  classifier: FittedScorer<CellClassifierParams>,
  padim: FittedScorer<PadimModelParams>,
  goods: { features: Float32Array[]; from: string },
): FittedScorer<CellClassifierParams> {
  const spread = (scores: number[]) => {
    const mean = scores.reduce((a, v) => a + v, 0) / Math.max(1, scores.length);
    const variance = scores.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, scores.length);
    return { mean: round6(mean), scale: 1 / Math.max(Math.sqrt(variance), 1e-3) };
  };
  const c = spread(goods.features.map(scoreOf(classifier.params)));
  const p = spread(goods.features.map(scoreOf(padim.params)));
  const fusion: ScoreFusion = {
    padim: padim.params.padim,
    classifierMean: c.mean,
    classifierScale: round6(c.scale),
    padimMean: p.mean,
    padimScale: round6(PADIM_FUSION_WEIGHT * p.scale),
  };
  return {
    params: { ...classifier.params, fusion },
    summary: {
      ...classifier.summary,
      scorer: 'cell-classifier+padim',
      padimGrid: fusion.padim.grid,
      padimMinShrinkage: PADIM_MIN_SHRINKAGE,
      padimWeight: PADIM_FUSION_WEIGHT,
      fusionNormalizedOn: goods.from,
      scoreUnit:
        'classifier logit and PaDiM distance, each in standard deviations of its scores on good images, summed (PaDiM weighted)',
    },
  };
}

/**
 * Supervised mode: per-position standardization plus novelty channel, and a
 * cell classifier trained from image labels (real and synthetic defects).
 */
async function fitClassifier(
  trainFeatures: readonly TrainFeatures[],
  geometry: PyramidGeometry,
  o: {
    seed: number;
    hidden: number;
    members: number;
    epochs: number;
    minTrainingSteps: number;
    threads: number;
    report: (progress: TrainingProgress) => void;
  },
): Promise<FittedScorer<CellClassifierParams>> {
  const { hidden, members, epochs, report } = o;
  const channels = featureChannels(geometry);
  const cells = gridSide(geometry) ** 2;
  const { mean: featureMean, invStd: featureInvStd } = cellStatistics(
    trainFeatures.filter((t) => !t.defect).map((t) => t.features),
    channels * cells,
  );
  const standardization = { featureMean, featureInvStd, novelty: true };
  const standardize = (f: Float32Array): Float32Array =>
    standardizeCells(f, cells, standardization);

  // Loss weights: good images carry half, defects the other half (real ones
  // most of it when there are any), so class sizes do not matter.
  const goods = trainFeatures.filter((t) => !t.defect).length;
  const reals = trainFeatures.filter((t) => t.defect && !t.synthetic).length;
  const synthetics = trainFeatures.filter((t) => t.synthetic).length;
  const syntheticShare = reals === 0 ? 1 : synthetics === 0 ? 0 : SYNTHETIC_LOSS_SHARE;
  const examples: HeadExample[] = trainFeatures.map((t) => ({
    z: standardize(t.features),
    defect: t.defect,
    weight: !t.defect
      ? 0.5 / goods
      : t.synthetic
        ? (0.5 * syntheticShare) / synthetics
        : (0.5 * (1 - syntheticShare)) / reals,
  }));
  const fitStarted = performance.now();
  let lastLoss: number | undefined;
  const stepsPerEpoch = Math.ceil(examples.length / BATCH_SIZE);
  const effectiveEpochs = Math.max(epochs, Math.ceil(o.minTrainingSteps / stepsPerEpoch));
  const heads: CellHead[] = [];
  // Two threads halve the classifier's training time, which grows with the data.
  const pool =
    o.threads > 1 ? HeadGradientPool.start(examples, cells, hidden, o.threads) : undefined;
  try {
    for (let member = 0; member < members; member++) {
      heads.push(
        await trainCellHead(examples, cells, headInputs(channels, standardization), {
          ...(pool !== undefined ? { batchGradients: pool.batchGradients } : {}),
          seed: o.seed * members + member,
          hidden,
          epochs: effectiveEpochs,
          batchSize: BATCH_SIZE,
          learningRate: LEARNING_RATE,
          onStep: async (step, steps) => {
            const done = member * steps + step;
            const total = members * steps;
            report({
              step: 'fit',
              done,
              total,
              epochs: effectiveEpochs * members,
              epoch: Math.ceil((done * effectiveEpochs * members) / total),
              ...(lastLoss === undefined ? {} : { loss: lastLoss }),
              elapsedMs: performance.now() - fitStarted,
            });
            if (step % 4 === 0) await yieldToEventLoop();
          },
          onEpoch: (_epoch, loss) => {
            lastLoss = loss;
          },
        }),
      );
    }
  } finally {
    await pool?.close();
  }
  const head = mergeHeads(heads);
  return {
    params: { kind: 'cell-classifier', geometry, ...standardization, head },
    summary: {
      scorer: 'cell-classifier',
      relativeFeatures: true,
      noveltyChannel: true,
      learningRate: LEARNING_RATE,
      hidden,
      members,
      epochs: effectiveEpochs,
      finalLoss: lastLoss === undefined ? null : round6(lastLoss),
      scoreUnit: 'logit (log-mean-exp of cell logits)',
    },
  };
}

/** The reference forward pass in TypeScript, mirroring the exported ONNX graph. */
export function pyramidModelForward(input: Float32Array, params: PyramidModelParams): ScoredMap {
  return scoreFeatures(pyramidFeatures(input, params.geometry).data, params);
}

/** A score and its anomaly map. */
interface ScoredMap {
  score: number;
  map: { width: number; height: number; data: Float32Array };
}

/** The graph after the pyramid features: what the trainer scores validation images with. */
function scoreFeatures(f: Float32Array, params: PyramidModelParams): ScoredMap {
  const grid = gridSide(params.geometry);
  if (params.kind === 'padim') {
    const map = padimMap(
      padimFeatures(f, baseChannels(params.geometry), grid, params.padim.maxPooled),
      params.padim,
    );
    const side = params.padim.grid;
    return {
      score: padimScore(map, params.padim.scoreTop, params.padim.scoreMinusMedian),
      map: { width: side, height: side, data: map },
    };
  }
  const z = standardizeCells(f, grid * grid, params);
  const map = headCellLogits(params.head, z, grid * grid);
  const classifier = Math.fround(logMeanExp(map));
  const fusion = params.fusion;
  if (fusion === undefined)
    return { score: classifier, map: { width: grid, height: grid, data: map } };
  // As the graph: the fused image score, and PaDiM's map at the classifier's grid.
  const padim = scoreFeatures(f, { kind: 'padim', geometry: params.geometry, padim: fusion.padim });
  const factor = grid / padim.map.width;
  const upsampled = new Float32Array(map.length);
  for (let y = 0; y < grid; y++)
    for (let x = 0; x < grid; x++)
      upsampled[y * grid + x] = padim.map.data[
        Math.floor(y / factor) * padim.map.width + Math.floor(x / factor)
      ] as number;
  return {
    score: fuseScores(classifier, padim.score, fusion),
    map: { width: grid, height: grid, data: upsampled },
  };
}

/** Without defect examples: the 99th percentile of good validation scores plus a tenth of their spread. */
function goodQuantileThreshold(goodScores: readonly number[]): {
  threshold: number;
  rule: 'good-quantile';
} {
  const q99 = quantile(goodScores, 0.99);
  const q50 = quantile(goodScores, 0.5);
  return { threshold: q99 + 0.1 * Math.max(q99 - q50, 1e-3), rule: 'good-quantile' };
}

/** Per-element mean and 1/(std + floor) over good feature vectors, summed in float64. */
function cellStatistics(
  features: readonly Float32Array[],
  length: number,
): { mean: Float32Array; invStd: Float32Array } {
  const sums = new Float64Array(length);
  const squares = new Float64Array(length);
  for (const f of features) {
    for (let j = 0; j < length; j++) {
      const v = f[j] as number;
      sums[j] = (sums[j] as number) + v;
      squares[j] = (squares[j] as number) + v * v;
    }
  }
  const n = features.length;
  const mean = new Float32Array(length);
  const invStd = new Float32Array(length);
  for (let j = 0; j < length; j++) {
    const m = (sums[j] as number) / n;
    mean[j] = m;
    invStd[j] = 1 / (Math.sqrt(Math.max(0, (squares[j] as number) / n - m * m)) + STD_FLOOR);
  }
  return { mean, invStd };
}

function checkOptions(
  o: DefectModelOptions & {
    size: number;
    levels: number;
    hidden: number;
    epochs: number;
    validationShare: number;
    members: number;
  },
): void {
  const problems: string[] = [];
  if (!Number.isInteger(o.members) || o.members < 1 || o.members > 8)
    problems.push(`members must be an integer in 1..8, got ${o.members}`);
  if (
    o.threads !== undefined &&
    !(Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= 64)
  )
    problems.push(`threads must be an integer in 1..64, got ${o.threads}`);
  if (!Number.isSafeInteger(o.seed)) problems.push(`seed must be an integer, got ${o.seed}`);
  if (o.mode !== undefined && !['supervised', 'anomaly', 'auto'].includes(o.mode))
    problems.push(`mode must be supervised, anomaly or auto, got ${String(o.mode)}`);
  if (!Number.isInteger(o.levels) || o.levels < 1 || o.levels > 5)
    problems.push(`levels must be an integer in 1..5, got ${o.levels}`);
  const step = 2 ** Math.max(0, Math.min(5, Math.trunc(o.levels)) - 1);
  if (
    !Number.isInteger(o.size) ||
    o.size < 32 ||
    o.size > 1024 ||
    o.size % step !== 0 ||
    o.size / step < 4
  )
    problems.push(`size must be an integer in 32..1024 divisible by ${step}, got ${o.size}`);
  if (!Number.isInteger(o.hidden) || o.hidden < 1 || o.hidden > 256)
    problems.push(`hidden must be an integer in 1..256, got ${o.hidden}`);
  if (!Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > 1000)
    problems.push(`epochs must be an integer in 1..1000, got ${o.epochs}`);
  if (!(o.validationShare > 0 && o.validationShare < 1))
    problems.push(`validationShare must be in (0, 1), got ${o.validationShare}`);
  if (o.syntheticPerGood !== undefined && !(o.syntheticPerGood >= 0 && o.syntheticPerGood <= 10))
    problems.push(`syntheticPerGood must be in [0, 10], got ${o.syntheticPerGood}`);
  if (
    o.minTrainingSteps !== undefined &&
    !(
      Number.isInteger(o.minTrainingSteps) &&
      o.minTrainingSteps >= 0 &&
      o.minTrainingSteps <= 100_000
    )
  )
    problems.push(`minTrainingSteps must be an integer in 0..100000, got ${o.minTrainingSteps}`);
  if (o.name !== undefined && (o.name.length < 1 || o.name.length > 64))
    problems.push(`name must have 1-64 characters, got ${o.name.length}`);
  if (problems.length > 0)
    throw new LinesightError('ERR_TRAINING', `bad training options: ${problems.join('; ')}`, {
      details: { problems },
    });
}

async function decodeSample(
  samples: readonly TrainingSample[],
  index: number,
  spec: InputSpec,
): Promise<Uint8Array> {
  const sample = samples[index] as TrainingSample;
  try {
    return await decodeImagePixels(sample.image, spec);
  } catch (cause) {
    throw new LinesightError(
      'ERR_DATASET',
      `sample ${index} (${sample.label}/${sample.className}) is not a readable image`,
      {
        cause,
        details: { index, label: sample.label, className: sample.className },
      },
    );
  }
}

function round6(value: number): number {
  return Number(value.toPrecision(6));
}
