import { availableParallelism } from 'node:os';
import { LinesightError } from '@linesight/protocol';
import type { HoldoutRecord } from './dataset-split.ts';
import type { TrainingProgress } from './training-result.ts';
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
   * Share of each label of the recent samples (`TrainingSample.recent`) held
   * out for validation, where they alone set the threshold;
   * RECENT_VALIDATION_SHARE unless given.
   */
  recentValidationShare?: number;
  /**
   * Synthetic defects painted on good training images, per good training image,
   * for the supervised classifier: 0.5 unless given (anomaly mode fits good images only).
   */
  syntheticPerGood?: number;
  /**
   * Where a supervised model's map comes from: 'auto' (default) the map head
   * learnt from the defect masks (`map-head.ts`) when the training set has
   * enough and it ranks the validation split's defect cells above PaDiM's
   * map, else PaDiM's; 'masks' the map head whenever there are enough masks;
   * 'padim' PaDiM's distances. The score is the same either way.
   */
  map?: MapSource;
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

/**
 * Recent samples held out to set the threshold. More than `validationShare`:
 * a retraining has a few dozen of them, and max-F1 over a handful of images
 * is a guess, but each one held out is one the model does not learn the
 * changed line from (docs/retraining.md, "Measured").
 */
export const RECENT_VALIDATION_SHARE = 0.3;

/** Small datasets get more epochs, so that the classifier sees at least this many mini-batches. */
const MIN_TRAINING_STEPS = 600;

/** Where a supervised model's map comes from (see DefectModelOptions.map). */
export type MapSource = 'auto' | 'masks' | 'padim';

/** The trainer's options with their defaults filled in, checked. */
export interface ResolvedTrainingOptions {
  seed: number;
  requestedMode: TrainingMode;
  size: number;
  levels: number;
  hidden: number;
  members: number;
  epochs: number;
  validationShare: number;
  recentValidationShare: number;
  /** As given: its default depends on the mode. */
  syntheticPerGood: number | undefined;
  minTrainingSteps: number;
  map: MapSource;
  threads: number;
  name: string;
  holdout: HoldoutRecord | undefined;
  report: (progress: TrainingProgress) => void;
}

/** Fills in the defaults and checks every option at once; throws ERR_TRAINING listing the problems. */
export function resolveTrainingOptions(options: DefectModelOptions): ResolvedTrainingOptions {
  const resolved: ResolvedTrainingOptions = {
    seed: options.seed,
    requestedMode: options.mode ?? 'auto',
    size: options.size ?? 256,
    levels: options.levels ?? 4,
    hidden: options.hidden ?? 16,
    members: options.members ?? 1,
    epochs: options.epochs ?? 30,
    validationShare: options.validationShare ?? 0.2,
    recentValidationShare: options.recentValidationShare ?? RECENT_VALIDATION_SHARE,
    syntheticPerGood: options.syntheticPerGood,
    map: options.map ?? 'auto',
    minTrainingSteps: options.minTrainingSteps ?? MIN_TRAINING_STEPS,
    threads: options.threads ?? Math.min(2, availableParallelism()),
    name: options.name ?? 'defect-model',
    holdout: options.holdout,
    report: options.onProgress ?? (() => undefined),
  };
  checkOptions(options, resolved);
  return resolved;
}

/**
 * The mode a dataset trains in: 'auto' picks supervised when there are defect
 * examples. Throws ERR_DATASET when the samples cannot train that mode.
 */
export function chooseTrainingMode(
  samples: readonly TrainingSample[],
  requested: TrainingMode,
): 'supervised' | 'anomaly' {
  if (samples.length === 0) throw new LinesightError('ERR_DATASET', 'dataset has no samples');
  const goodCount = samples.filter((s) => s.label === 'good').length;
  const defectCount = samples.length - goodCount;
  if (goodCount === 0) {
    throw new LinesightError(
      'ERR_DATASET',
      `dataset has no good samples (of ${samples.length}); the model learns what good looks like first`,
    );
  }
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
  return mode;
}

/** Checks the options as given (`o`) and with defaults (`r`). */
function checkOptions(o: DefectModelOptions, r: ResolvedTrainingOptions): void {
  const problems: string[] = [];
  if (!Number.isInteger(r.members) || r.members < 1 || r.members > 8)
    problems.push(`members must be an integer in 1..8, got ${r.members}`);
  if (
    o.threads !== undefined &&
    !(Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= 64)
  )
    problems.push(`threads must be an integer in 1..64, got ${o.threads}`);
  if (!Number.isSafeInteger(o.seed)) problems.push(`seed must be an integer, got ${o.seed}`);
  if (o.mode !== undefined && !['supervised', 'anomaly', 'auto'].includes(o.mode))
    problems.push(`mode must be supervised, anomaly or auto, got ${String(o.mode)}`);
  if (!['auto', 'masks', 'padim'].includes(r.map))
    problems.push(`map must be auto, masks or padim, got ${String(r.map)}`);
  if (!Number.isInteger(r.levels) || r.levels < 1 || r.levels > 5)
    problems.push(`levels must be an integer in 1..5, got ${r.levels}`);
  const step = 2 ** Math.max(0, Math.min(5, Math.trunc(r.levels)) - 1);
  if (
    !Number.isInteger(r.size) ||
    r.size < 32 ||
    r.size > 1024 ||
    r.size % step !== 0 ||
    r.size / step < 4
  )
    problems.push(`size must be an integer in 32..1024 divisible by ${step}, got ${r.size}`);
  if (!Number.isInteger(r.hidden) || r.hidden < 1 || r.hidden > 256)
    problems.push(`hidden must be an integer in 1..256, got ${r.hidden}`);
  if (!Number.isInteger(r.epochs) || r.epochs < 1 || r.epochs > 1000)
    problems.push(`epochs must be an integer in 1..1000, got ${r.epochs}`);
  if (!(r.validationShare > 0 && r.validationShare < 1))
    problems.push(`validationShare must be in (0, 1), got ${r.validationShare}`);
  if (!(r.recentValidationShare > 0 && r.recentValidationShare < 1))
    problems.push(`recentValidationShare must be in (0, 1), got ${r.recentValidationShare}`);
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
