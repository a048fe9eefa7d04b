import { LinesightError, greyInputSpec, sha256Hex } from '@linesight/protocol';
import { fitClassifier } from './classifier-scorer.ts';
import { splitDataset } from './dataset-split.ts';
import type { FittedScorer } from './fitted-scorer.ts';
import { fitTrainingMapHead, maskedDefects } from './map-head.ts';
import { validationPixelAuroc } from './map-choice.ts';
import { defectCells, samplesMaskCoverage } from './mask-coverage.ts';
import { computeMetrics } from './metrics.ts';
import { modelCard } from './model-card.ts';
import { padimFeatures, padimGrid } from './padim.ts';
import { fuseWithPadim, normalizationGoods, withMapChoice } from './padim-fusion.ts';
import { PADIM_NEIGHBOURS, PADIM_NEIGHBOUR_SCORE_TOP } from './padim-neighbours.ts';
import { fitPadimScorer } from './padim-scorer.ts';
import { exportPyramidModelOnnx, type PyramidModelParams } from './pyramid-graph.ts';
import { scoreOf } from './reference-forward.ts';
import { round6 } from './round6.ts';
import { validationThreshold } from './threshold.ts';
import { baseChannels, gridSide, type PyramidGeometry } from './pyramid-features.ts';
import { trainingFeatures, trainingGeometry, type TrainFeatures } from './training-features.ts';
import {
  chooseTrainingMode,
  resolveTrainingOptions,
  type DefectModelOptions,
  type ResolvedTrainingOptions,
} from './training-options.ts';
import type { TrainedModel } from './training-result.ts';
import type { TrainingSample } from './training-sample.ts';

export { pyramidModelForward } from './reference-forward.ts';
export type { DefectModelOptions, MapSource, TrainingMode } from './training-options.ts';

/** A trained pyramid defect model with its parameters (for the reference forward pass). */
export interface TrainedDefectModel extends TrainedModel {
  params: PyramidModelParams;
  mode: 'supervised' | 'anomaly';
}

/**
 * Trains the Linesight defect model on multi-scale filter-bank cell features.
 * Supervised: the features are standardized per cell position against good
 * training images and a small cell classifier learns from image labels (real
 * defects plus synthetic ones). Anomaly (good images only): a per-position
 * Gaussian of the good parts' features and a few good parts kept per position
 * score each cell by its whitened distance to the nearest of those parts
 * (`padim.ts`, `padim-neighbours.ts`); supervised mode adds that score. The
 * threshold comes from a validation split held out of training (its recent
 * samples alone when it has recent good and defect ones, see
 * `TrainingSample.recent`). Throws ERR_DATASET for an unusable dataset and
 * ERR_TRAINING for bad options.
 */
export async function trainDefectModel(
  samples: readonly TrainingSample[],
  options: DefectModelOptions,
): Promise<TrainedDefectModel> {
  const started = performance.now();
  const o = resolveTrainingOptions(options);
  const { report } = o;
  const mode = chooseTrainingMode(samples, o.requestedMode);
  if (mode === 'anomaly' && o.map === 'masks')
    throw new LinesightError(
      'ERR_TRAINING',
      "map: masks needs a supervised model (defect images with masks); this training is anomaly mode, whose map is PaDiM's",
    );
  const geometry = trainingGeometry(o.size, o.levels, mode);
  const hashes = samples.map((s) => sha256Hex(s.image));
  const split = splitDataset(samples, {
    seed: o.seed,
    validationShare: o.validationShare,
    recentValidationShare: o.recentValidationShare,
    sha256: hashes,
  });
  const isDefect = (i: number): boolean => samples[i]?.label === 'defect';
  const trainGood = split.train.filter((i) => !isDefect(i));
  const trainDefect = mode === 'supervised' ? split.train.filter(isDefect) : [];
  const validation = split.validation;
  if (trainGood.length < 2) {
    throw new LinesightError(
      'ERR_DATASET',
      `only ${trainGood.length} of the ${samples.filter((s) => s.label === 'good').length} good images are left for training after holding out ${Math.round(o.validationShare * 100)} % for validation; the model needs at least 2 to learn what good looks like (add good images)`,
    );
  }

  const inputSpec = greyInputSpec(o.size);
  const perGood = mode === 'anomaly' ? 0 : (o.syntheticPerGood ?? 0.5);
  const features = await trainingFeatures({
    samples,
    trainGood,
    trainDefect,
    validation,
    inputSpec,
    geometry,
    seed: o.seed,
    syntheticCount: Math.round(trainGood.length * perGood),
    threads: o.threads,
    report,
  });
  // The masks of the real training defects, keyed by their place in features.train
  // (good training images first, then these): what the map head learns from.
  const coverage =
    mode === 'supervised'
      ? await samplesMaskCoverage(
          trainDefect.map((i) => samples[i]?.mask),
          o.size,
          padimGrid(gridSide(geometry)),
        )
      : new Map<number, Float32Array>();
  // The validation defects' masks at the output map's grid, to compare maps on
  // (only 'auto' compares them).
  const validationCells =
    mode === 'supervised' && o.map === 'auto'
      ? new Map(
          [
            ...(await samplesMaskCoverage(
              validation.map((i) => (isDefect(i) ? samples[i]?.mask : undefined)),
              o.size,
              gridSide(geometry),
            )),
          ].map(([k, c]) => [k, defectCells(c)]),
        )
      : new Map<number, boolean[]>();
  const scorer = await fitScorer(
    mode,
    features.train,
    features.validation,
    geometry,
    o,
    (k) => isDefect(validation[k] as number),
    new Map([...coverage].map(([j, c]) => [trainGood.length + j, c])),
    validationCells,
  );
  features.train.length = 0;
  const params = scorer.params;

  const validationScores: number[] = [];
  const score = scoreOf(params);
  for (const [k, f] of features.validation.entries()) {
    validationScores.push(score(f));
    report({ step: 'validate', done: k + 1, total: validation.length });
  }
  const validationLabels = validation.map(isDefect);
  const referenceScores = validationScores.filter((_, k) => !validationLabels[k]);
  const choice = validationThreshold(
    validationScores,
    validationLabels,
    validation.map((i) => samples[i]?.recent === true),
  );
  const threshold = round6(choice.threshold);
  const metrics = computeMetrics(validationScores, validationLabels, threshold);

  const contract = modelCard({
    options: o,
    mode,
    samples,
    hashes,
    inputSpec,
    geometry,
    params,
    scorerSummary: scorer.summary,
    counts: {
      trainGood: trainGood.length,
      trainDefect: trainDefect.length,
      trainSynthetic: features.syntheticCount,
    },
    validationGood: validation.filter((i) => !isDefect(i)),
    validationCount: validation.length,
    threshold,
    thresholdRule: choice.rule,
    ...(choice.recentImages !== undefined ? { thresholdFromRecent: choice.recentImages } : {}),
    metrics,
    referenceScores,
    validationScores,
    tensors: features.tensors,
  });
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

/**
 * PaDiM pools the peak channels to its grid by their maximum and scores the
 * mean of the top cells minus the median cell of each cell's distance to its
 * nearest good neighbour (see PADIM_NEIGHBOURS), in both modes; supervised
 * mode fuses it with a cell classifier (see PADIM_FUSION_WEIGHT).
 */
async function fitScorer(
  mode: 'supervised' | 'anomaly',
  train: readonly TrainFeatures[],
  validation: readonly Float32Array[],
  geometry: PyramidGeometry,
  o: ResolvedTrainingOptions,
  validationIsDefect: (k: number) => boolean,
  coverage: ReadonlyMap<number, Float32Array>,
  validationCells: ReadonlyMap<number, boolean[]>,
): Promise<FittedScorer> {
  const padim = fitPadimScorer(train, geometry, o.report, {
    maxPoolPeaks: true,
    neighbours: PADIM_NEIGHBOURS,
    scoreTop: PADIM_NEIGHBOUR_SCORE_TOP,
    minusMedian: true,
  });
  if (mode === 'anomaly') return padim;
  const classifier = await fitClassifier(train, geometry, {
    seed: o.seed,
    hidden: o.hidden,
    members: o.members,
    epochs: o.epochs,
    minTrainingSteps: o.minTrainingSteps,
    threads: o.threads,
    report: o.report,
  });
  const goods = normalizationGoods(
    validation.filter((_, k) => !validationIsDefect(k)),
    train.filter((t) => !t.defect).map((t) => t.features),
  );
  const fused = fuseWithPadim(classifier, padim, goods);
  if (o.map === 'padim')
    return withMapChoice(fused, { masks: maskedDefects(coverage), reason: 'map: padim asked for' });
  const gaussian = padim.params.padim;
  const mapHead = fitTrainingMapHead(
    train,
    coverage,
    gaussian,
    (f) => padimFeatures(f, baseChannels(geometry), gridSide(geometry), gaussian.maxPooled),
    {
      seed: o.seed,
      onEpoch: (epoch, epochs) =>
        o.report({ step: 'fit', done: epoch, total: epochs, epoch, epochs }),
    },
  );
  const { masks } = mapHead;
  if (mapHead.params === undefined) return withMapChoice(fused, { masks, reason: mapHead.reason });
  const head = mapHead.params;
  const withHead = withMapChoice(fused, { head, masks });
  if (o.map === 'masks') return withHead;
  // 'auto': the map head only where it places the validation split's defects better.
  const [padimAuroc, headAuroc] = validationPixelAuroc(
    [fused.params, withHead.params],
    validation.map((features, k) => {
      const cells = validationCells.get(k);
      return {
        features,
        defect: validationIsDefect(k),
        ...(cells !== undefined ? { defectCells: cells } : {}),
      };
    }),
  );
  const compared = { padim: padimAuroc ?? null, mapHead: headAuroc ?? null };
  if (padimAuroc != null && headAuroc != null && headAuroc > padimAuroc)
    return withMapChoice(fused, { head, masks, compared });
  const reason =
    padimAuroc == null || headAuroc == null
      ? "the validation split has no masked defect to compare the maps on: the map is PaDiM's"
      : `on the validation split the map head ranked defect cells at ${headAuroc.toFixed(3)}, PaDiM's map at ${padimAuroc.toFixed(3)}: the map is PaDiM's`;
  return withMapChoice(fused, { masks, reason, compared });
}
