import type { FittedScorer } from './fitted-scorer.ts';
import { PADIM_MIN_SHRINKAGE } from './padim.ts';
import type { CellClassifierParams, PadimModelParams, ScoreFusion } from './pyramid-graph.ts';
import { scoreOf } from './reference-forward.ts';
import { round6 } from './round6.ts';

/**
 * Weight of PaDiM's normalized score next to the classifier's in supervised
 * mode. On MTD (three held-out splits, cached features) weights 1, 0.5 and
 * 0.25 all beat the classifier alone (mean +0.007, +0.014, +0.014).
 */
const PADIM_FUSION_WEIGHT = 0.5;
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
      padimGrid: fusion.padim.grid,
      padimMinShrinkage: PADIM_MIN_SHRINKAGE,
      padimWeight: PADIM_FUSION_WEIGHT,
      padimMapBlurPasses: fusion.padim.mapBlurPasses ?? null,
      fusionNormalizedOn: goods.from,
      scoreUnit:
        'classifier logit and PaDiM distance, each in standard deviations of its scores on good images, summed (PaDiM weighted)',
    },
  };
}
