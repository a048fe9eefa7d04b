import type { FittedScorer } from './fitted-scorer.ts';
import type { MapHeadParams } from './map-head.ts';
import { padimSummary } from './padim-summary.ts';
import type { CellClassifierParams, PadimModelParams, ScoreFusion } from './pyramid-graph.ts';
import { scoreOf } from './reference-forward.ts';
import { round6 } from './round6.ts';

/**
 * Weight of PaDiM's normalized score next to the classifier's in supervised
 * mode, PaDiM scoring as in anomaly mode. With the Gaussian's top cells minus
 * the median (MTD, 5 folds, seed 1) this fusion gave 0.945 ± 0.023, against
 * 0.934 ± 0.023 for the mean-pooled, maximum-cell PaDiM at 0.5 used before;
 * weights 0.5 / 0.75 / 1 / 1.5 / 2 gave 0.946 / 0.946 / 0.945 / 0.942 /
 * 0.940. With the nearest-neighbour score (folds 3-5) 0.5 / 1 / 1.5 gave
 * 0.958 / 0.959 / 0.957 (packages/model/README.md).
 */
export const PADIM_FUSION_WEIGHT = 1;
/** Fewer good validation images than this cannot give a score spread; training ones join them. */
const MIN_NORMALIZATION_GOODS = 5;

/**
 * The good images whose scores normalize the fused score: the validation ones,
 * or with fewer than MIN_NORMALIZATION_GOODS of those, all good images (the
 * training ones score a little low on the classifier, but a spread of one
 * image is none).
 */
export function normalizationGoods(
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
export function fuseWithPadim(
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
      ...padimSummary(fusion.padim),
      padimWeight: PADIM_FUSION_WEIGHT,
      fusionNormalizedOn: goods.from,
      map: 'PaDiM distance',
      scoreUnit: `classifier logit and PaDiM ${fusion.padim.neighbours !== undefined ? 'nearest-neighbour ' : ''}distance, each in standard deviations of its scores on good images, summed (PaDiM weighted)`,
    },
  };
}

/** Which map a fused model outputs, and why (see `map-head.ts`). */
export interface MapChoice {
  /** The map head, when it is the map. */
  head?: MapHeadParams;
  /** Training defects with a mask that marks a cell. */
  masks: number;
  /** Why the map is PaDiM's although masks were there or asked for. */
  reason?: string;
  /** Pixel AUROC of both maps on the validation split, when they were compared. */
  compared?: { padim: number | null; mapHead: number | null };
}

/** A fused model with its map chosen: the map head's or PaDiM's, recorded in the summary. */
export function withMapChoice(
  fused: FittedScorer<CellClassifierParams>,
  choice: MapChoice,
): FittedScorer<CellClassifierParams> {
  const fusion = fused.params.fusion;
  if (fusion === undefined) throw new RangeError('withMapChoice needs a fused model');
  return {
    params:
      choice.head === undefined
        ? fused.params
        : { ...fused.params, fusion: { ...fusion, mapHead: choice.head } },
    summary: {
      ...fused.summary,
      map:
        choice.head !== undefined
          ? 'map head trained on defect masks (a defect score in 0..1 per cell)'
          : 'PaDiM distance',
      mapHeadMasks: choice.masks,
      ...(choice.reason !== undefined ? { mapHeadSkipped: choice.reason } : {}),
      ...(choice.compared !== undefined ? { mapValidationPixelAuroc: choice.compared } : {}),
    },
  };
}
