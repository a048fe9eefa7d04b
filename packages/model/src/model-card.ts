import type { InputSpec } from '@linesight/protocol';
import { tensorStatistics, type ModelContract } from '@linesight/vision';
import { datasetFingerprint, trainingImageHashes } from './dataset-split.ts';
import { fixedHistogram } from './histogram.ts';
import type { EvalMetrics } from './metrics.ts';
import { featureNames, gridSide, type PyramidGeometry } from './pyramid-features.ts';
import type { PyramidModelParams } from './pyramid-graph.ts';
import { round6 } from './round6.ts';
import type { ThresholdRule } from './threshold.ts';
import { MAX_POOL_LEVELS } from './training-features.ts';
import type { ResolvedTrainingOptions } from './training-options.ts';
import type { TrainingSample } from './training-sample.ts';
import { windowReference } from './window-reference.ts';

const TRAINER = 'linesight-pyramid/1';
const SCORE_BINS = 20;

/** What a training run hands the model card. */
export interface ModelCardInput {
  options: ResolvedTrainingOptions;
  mode: 'supervised' | 'anomaly';
  samples: readonly TrainingSample[];
  /** sha256 of each sample's image, by sample index. */
  hashes: readonly string[];
  inputSpec: InputSpec;
  geometry: PyramidGeometry;
  params: PyramidModelParams;
  /** The scorer's own lines of the card. */
  scorerSummary: Record<string, unknown>;
  counts: { trainGood: number; trainDefect: number; trainSynthetic: number };
  /** Sample indices of the good validation images, and the validation split's size. */
  validationGood: readonly number[];
  validationCount: number;
  threshold: number;
  thresholdRule: ThresholdRule;
  /** Recent validation images the threshold was chosen on alone; absent: on the whole validation split. */
  thresholdFromRecent?: number;
  metrics: EvalMetrics;
  /** Scores of the good validation images, and of every validation image. */
  referenceScores: number[];
  validationScores: number[];
  /** Input tensors of every decoded sample, by sample index. */
  tensors: Map<number, Float32Array>;
}

/**
 * The model's contract: how it was trained (the card), on which images, and
 * the reference profile devices' drift windows are compared with.
 */
export function modelCard(c: ModelCardInput): ModelContract {
  const { options, params, geometry, inputSpec, threshold, referenceScores } = c;
  const statistics = c.validationGood.map((i) =>
    tensorStatistics(c.tensors.get(i) as Float32Array, inputSpec),
  );
  const low = Math.min(threshold, ...referenceScores);
  const high = Math.max(threshold, ...referenceScores);
  const margin = Math.max(1e-3, (high - low) * 0.25);
  return {
    schema: 'linesight.model/v1',
    kind: params.kind === 'padim' ? 'pyramid-padim' : 'pyramid-cell-classifier',
    name: options.name,
    inputSpec,
    outputs: { score: 'score', map: 'map' },
    threshold,
    // The map head's map is a defect score in 0..1, not in the units of the score.
    ...(params.kind !== 'padim' && params.fusion?.mapHead !== undefined ? { mapScale: 1 } : {}),
    training: {
      trainer: TRAINER,
      mode: c.mode,
      requestedMode: options.requestedMode,
      seed: options.seed,
      samples: c.samples.length,
      trainGood: c.counts.trainGood,
      trainDefect: c.counts.trainDefect,
      trainSynthetic: c.counts.trainSynthetic,
      validationGood: c.validationGood.length,
      validationDefect: c.validationCount - c.validationGood.length,
      validationShare: options.validationShare,
      size: options.size,
      levels: options.levels,
      maxPoolLevels: Math.min(MAX_POOL_LEVELS, options.levels - 1),
      kernels: geometry.kernels.map((k) => k.name),
      features: featureNames(geometry).length,
      grid: gridSide(geometry),
      ...c.scorerSummary,
      thresholdRule: c.thresholdRule,
      // Only recorded for a recent-sample threshold: a plain training's contract is unchanged.
      ...(c.thresholdFromRecent !== undefined
        ? {
            thresholdFrom: 'recent-validation',
            thresholdImages: c.thresholdFromRecent,
            recentValidationShare: options.recentValidationShare,
          }
        : { thresholdFrom: 'validation' }),
      validation: c.metrics,
      ...(options.holdout !== undefined ? { holdout: options.holdout } : {}),
    },
    datasetFingerprint: datasetFingerprint(c.samples, c.hashes),
    trainingImages: trainingImageHashes(c.hashes),
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
        tensors: c.tensors.values(),
        inputSpec,
        threshold,
        goodScores: referenceScores,
        validationScores: c.validationScores,
      }),
    },
  };
}
