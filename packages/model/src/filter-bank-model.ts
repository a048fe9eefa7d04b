import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { LinesightError, sha256Hex, type InputSpec } from '@linesight/protocol';
import {
  decodeImagePixels,
  rawToTensor,
  tensorStatistics,
  type ModelContract,
} from '@linesight/vision';
import { datasetFingerprint, splitDataset } from './dataset-split.ts';
import { exportFilterBankOnnx } from './filter-bank-graph.ts';
import {
  filterBankEnergies,
  filterBankForward,
  filterBankGeometry,
  type FilterBankParams,
} from './filter-bank-reference.ts';
import { DEFAULT_KERNEL_SIZE, defaultFilterBank } from './filter-kernels.ts';
import { fixedHistogram } from './histogram.ts';
import { mapConcurrent } from './map-concurrent.ts';
import { computeMetrics, type EvalMetrics } from './metrics.ts';
import { chooseThreshold } from './threshold.ts';
import type { TrainingSample } from './training-sample.ts';

/** A step of training, reported as it advances. */
export interface TrainingProgress {
  step: 'decode' | 'features' | 'fit' | 'validate' | 'export';
  done: number;
  total: number;
  /** Current epoch (1-based) of a trainer that has epochs. */
  epoch?: number;
  epochs?: number;
  /** Mean training loss of the last finished epoch. */
  loss?: number;
  /** Time spent in this step so far. */
  elapsedMs?: number;
}

/** Options of the filter-bank trainer. */
export interface FilterBankTrainingOptions {
  /** Drives the train/validation split; same samples and seed give byte-identical ONNX. */
  seed: number;
  /** Model input width in pixels; 256 unless given. */
  width?: number;
  /** Model input height in pixels; 256 unless given. */
  height?: number;
  /** Share of each class held out for validation and the threshold; 0.25 unless given. */
  validationShare?: number;
  /** Model name recorded in the contract. */
  name?: string;
  onProgress?: (progress: TrainingProgress) => void;
}

/** A trained model: the ONNX artifact with its contract, validation metrics and reference scores. */
export interface TrainedModel {
  onnx: Uint8Array;
  contract: ModelContract;
  /** Metrics on the validation split at the contract's threshold. */
  metrics: EvalMetrics;
  /** Scores of the held-out good images: the reference distribution for drift checks. */
  referenceScores: number[];
  /** Wall time of training; kept out of the contract so the artifact stays reproducible. */
  trainingMs: number;
}

/** A trained filter-bank model with its fitted parameters (for the reference forward pass). */
export interface TrainedFilterBankModel extends TrainedModel {
  params: FilterBankParams;
}

/** Side of the average-pooling window that measures local filter energy. */
export const ENERGY_POOL_SIZE = 8;
/** Stride of that window (overlapping by half). */
export const ENERGY_POOL_STRIDE = 4;
/** Side of the map window whose mean is the score (a lone hot cell counts less). */
export const SCORE_POOL_SIZE = 2;
const SCORE_BINS = 20;
const DECODE_CONCURRENCY = 4;

/**
 * Trains the foundation anomaly model: a fixed bank of edge, blob and line
 * filters whose local energies are standardized against good training images.
 * Needs good images only; defect images in the validation split set the
 * threshold by best F1, otherwise the 99th percentile of good scores (x1.1) does.
 * Throws ERR_DATASET for an unusable dataset, ERR_TRAINING for bad options.
 * CPU-bound but yields to the event loop between images.
 */
export async function trainFilterBankModel(
  samples: readonly TrainingSample[],
  options: FilterBankTrainingOptions,
): Promise<TrainedFilterBankModel> {
  const started = performance.now();
  const width = options.width ?? 256;
  const height = options.height ?? 256;
  const validationShare = options.validationShare ?? 0.25;
  checkOptions(options.seed, width, height, validationShare, options.name);
  if (samples.length === 0) throw new LinesightError('ERR_DATASET', 'dataset has no samples');
  if (!samples.some((s) => s.label === 'good')) {
    throw new LinesightError(
      'ERR_DATASET',
      `dataset has no good samples (of ${samples.length}); the filter-bank model learns what good looks like`,
    );
  }
  const report = options.onProgress ?? (() => undefined);

  const hashes = samples.map((s) => sha256Hex(s.image));
  const split = splitDataset(samples, { seed: options.seed, validationShare, sha256: hashes });
  const isDefect = (i: number): boolean => samples[i]?.label === 'defect';
  const trainGood = split.train.filter((i) => !isDefect(i));
  const validation = split.validation;

  // Decode once at model size; normalization is fitted on these raw pixels.
  const decodeSpec: InputSpec = {
    inputName: 'image',
    width,
    height,
    channels: 1,
    layout: 'NCHW',
    resize: 'fill',
    scale: 1 / 255,
    mean: [0],
    std: [1],
  };
  const needed = [...trainGood, ...validation];
  let decoded = 0;
  const pixelList = await mapConcurrent(needed, DECODE_CONCURRENCY, async (index) => {
    const pixels = await decodeSample(samples, index, decodeSpec);
    report({ step: 'decode', done: ++decoded, total: needed.length });
    return pixels;
  });
  const pixels = new Map(needed.map((index, k) => [index, pixelList[k] as Uint8Array]));

  const inputSpec = fitInputSpec(
    trainGood.map((i) => pixels.get(i) as Uint8Array),
    decodeSpec,
  );
  const tensorOf = (i: number): Float32Array => rawToTensor(pixels.get(i) as Uint8Array, inputSpec);

  const filters = defaultFilterBank(DEFAULT_KERNEL_SIZE);
  const geometry = {
    inputWidth: width,
    inputHeight: height,
    filters,
    poolSize: ENERGY_POOL_SIZE,
    poolStride: ENERGY_POOL_STRIDE,
  };
  try {
    filterBankGeometry(geometry);
  } catch (cause) {
    throw new LinesightError(
      'ERR_TRAINING',
      `input ${width}x${height} is too small for the filter bank`,
      { cause },
    );
  }
  const sums = new Float64Array(filters.length);
  const sumSquares = new Float64Array(filters.length);
  let cellsPerChannel = 0;
  for (const [k, index] of trainGood.entries()) {
    await yieldToEventLoop();
    const energies = filterBankEnergies(tensorOf(index), geometry);
    const cells = energies.width * energies.height;
    for (let c = 0; c < filters.length; c++) {
      for (let i = c * cells; i < (c + 1) * cells; i++) {
        const v = energies.data[i] as number;
        sums[c] = (sums[c] as number) + v;
        sumSquares[c] = (sumSquares[c] as number) + v * v;
      }
    }
    cellsPerChannel += cells;
    report({ step: 'fit', done: k + 1, total: trainGood.length });
  }
  const channelMean = new Float32Array(filters.length);
  const channelInvStd = new Float32Array(filters.length);
  for (let c = 0; c < filters.length; c++) {
    const mean = (sums[c] as number) / cellsPerChannel;
    const variance = Math.max(0, (sumSquares[c] as number) / cellsPerChannel - mean * mean);
    // A floor keeps a channel that is flat on good images from turning noise into huge z-scores.
    channelMean[c] = mean;
    channelInvStd[c] = 1 / Math.max(Math.sqrt(variance), 0.01 * mean, 1e-6);
  }
  const params: FilterBankParams = {
    ...geometry,
    channelMean,
    channelInvStd,
    scorePoolSize: SCORE_POOL_SIZE,
  };

  const scoreOf = (index: number): number => filterBankForward(tensorOf(index), params).score;
  const validationScores: number[] = [];
  for (const [k, index] of validation.entries()) {
    await yieldToEventLoop();
    validationScores.push(scoreOf(index));
    report({ step: 'validate', done: k + 1, total: validation.length });
  }
  const validationLabels = validation.map(isDefect);
  const validationGood = validation.filter((i) => !isDefect(i));
  // With a single good image nothing good is held out: fall back to in-sample good scores.
  const referenceIndices = validationGood.length > 0 ? validationGood : trainGood;
  const referenceScores =
    validationGood.length > 0
      ? validationScores.filter((_, k) => !validationLabels[k])
      : trainGood.map(scoreOf);
  const thresholdScores =
    validationGood.length > 0 ? validationScores : [...referenceScores, ...validationScores];
  const thresholdLabels =
    validationGood.length > 0
      ? validationLabels
      : [...referenceScores.map(() => false), ...validationLabels];
  const { threshold, rule } = chooseThreshold(thresholdScores, thresholdLabels);
  const metrics = computeMetrics(validationScores, validationLabels, threshold);

  const statistics = referenceIndices.map((i) => tensorStatistics(tensorOf(i), inputSpec));
  const scoreTop = Math.max(2 * threshold, ...referenceScores, 1e-3);
  const contract: ModelContract = {
    schema: 'linesight.model/v1',
    kind: 'anomaly-filter-bank',
    name: options.name ?? 'filter-bank',
    inputSpec,
    outputs: { score: 'score', map: 'map' },
    threshold,
    training: {
      trainer: 'linesight-filter-bank/1',
      seed: options.seed,
      samples: samples.length,
      trainGood: trainGood.length,
      trainDefect: split.train.length - trainGood.length,
      validationGood: validationGood.length,
      validationDefect: validation.length - validationGood.length,
      validationShare,
      filters: filters.map((f) => f.name),
      kernelSize: DEFAULT_KERNEL_SIZE,
      energyPool: { size: ENERGY_POOL_SIZE, stride: ENERGY_POOL_STRIDE },
      scorePoolSize: SCORE_POOL_SIZE,
      thresholdRule: rule,
      thresholdFrom: validationGood.length > 0 ? 'validation' : 'train-good+validation',
      validation: metrics,
    },
    datasetFingerprint: datasetFingerprint(samples, hashes),
    referenceProfile: {
      score: fixedHistogram(referenceScores, 0, Number(scoreTop.toPrecision(6)), SCORE_BINS),
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
    },
  };
  report({ step: 'export', done: 0, total: 1 });
  const onnx = exportFilterBankOnnx(params, contract);
  report({ step: 'export', done: 1, total: 1 });
  return {
    onnx,
    contract,
    metrics,
    referenceScores,
    trainingMs: performance.now() - started,
    params,
  };
}

function checkOptions(
  seed: number,
  width: number,
  height: number,
  validationShare: number,
  name: string | undefined,
): void {
  const problems: string[] = [];
  if (!Number.isSafeInteger(seed)) problems.push(`seed must be an integer, got ${seed}`);
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(value) || value < 32 || value > 4096)
      problems.push(`${name} must be an integer in 32..4096, got ${value}`);
  }
  if (!(validationShare >= 0 && validationShare < 1))
    problems.push(`validationShare must be in [0, 1), got ${validationShare}`);
  if (name !== undefined && (name.length < 1 || name.length > 64)) {
    problems.push(`name must have 1-64 characters, got ${name.length}`);
  }
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

/** Mean and std of training-good pixel values (after scale), from a 256-bin histogram so the order of images does not matter. */
function fitInputSpec(goodPixels: readonly Uint8Array[], base: InputSpec): InputSpec {
  const counts = new Float64Array(256);
  for (const image of goodPixels)
    for (let i = 0; i < image.length; i++)
      counts[image[i] as number] = (counts[image[i] as number] as number) + 1;
  let n = 0;
  let sum = 0;
  for (let p = 0; p < 256; p++) {
    n += counts[p] as number;
    sum += (counts[p] as number) * p * base.scale;
  }
  const mean = sum / n;
  let squares = 0;
  for (let p = 0; p < 256; p++) squares += (counts[p] as number) * (p * base.scale - mean) ** 2;
  // One grey level as a floor keeps blank training images usable.
  const std = Math.max(Math.sqrt(squares / n), base.scale);
  return { ...base, mean: [round6(mean)], std: [round6(std)] };
}

function round6(value: number): number {
  return Number(value.toPrecision(6));
}
