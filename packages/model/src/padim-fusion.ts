import type { FittedScorer } from './fitted-scorer.ts';
import type { MapHeadParams } from './map-head.ts';
import { PADIM_MIN_SHRINKAGE } from './padim.ts';
import type { CellClassifierParams, PadimModelParams, ScoreFusion } from './pyramid-graph.ts';
import { scoreOf } from './reference-forward.ts';
import { round6 } from './round6.ts';

/**
 * Weight of PaDiM's normalized score next to the classifier's in supervised
 * mode, PaDiM scoring as in anomaly mode (peaks max-pooled, top cells minus
 * the median). On MTD (5 folds, seed 1) this fusion gave 0.945 ± 0.023,
 * against 0.934 ± 0.023 for the mean-pooled, maximum-cell PaDiM at 0.5 used
 * before (higher on every fold); weights 0.5 / 0.75 / 1 / 1.5 / 2 gave 0.946
 * / 0.946 / 0.945 / 0.942 / 0.940 (packages/model/README.md).
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
  mapHead?: { params?: MapHeadParams; masks: number; reason?: string },
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
    ...(mapHead?.params !== undefined ? { mapHead: mapHead.params } : {}),
  };
  return {
    params: { ...classifier.params, fusion },
    summary: {
      ...classifier.summary,
      scorer: 'cell-classifier+padim',
      padimGrid: fusion.padim.grid,
      padimMinShrinkage: PADIM_MIN_SHRINKAGE,
      padimPeakPooling: fusion.padim.maxPooled !== undefined ? 'max' : 'mean',
      padimScoreTop: fusion.padim.scoreTop ?? 1,
      padimScoreMinusMedian: fusion.padim.scoreMinusMedian === true,
      padimWeight: PADIM_FUSION_WEIGHT,
      padimMapBlurPasses: fusion.padim.mapBlurPasses ?? null,
      fusionNormalizedOn: goods.from,
      map:
        fusion.mapHead !== undefined
          ? 'map head trained on defect masks (defect probability per cell)'
          : 'PaDiM distance',
      mapHeadMasks: mapHead?.masks ?? 0,
      ...(mapHead?.reason !== undefined ? { mapHeadSkipped: mapHead.reason } : {}),
      scoreUnit:
        'classifier logit and PaDiM distance, each in standard deviations of its scores on good images, summed (PaDiM weighted)',
    },
  };
}
