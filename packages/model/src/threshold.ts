/** How a decision threshold was chosen. */
export type ThresholdRule = 'max-f1' | 'good-quantile';

/** A chosen threshold and why. */
export interface ThresholdChoice {
  threshold: number;
  rule: ThresholdRule;
}

/** Quantile of good scores and margin used when no defect examples exist. */
export const GOOD_QUANTILE = 0.99;
/** Factor applied to the good-score quantile (scores are non-negative). */
export const GOOD_QUANTILE_MARGIN = 1.1;

/**
 * Picks a threshold (score >= threshold means defect). With defect examples:
 * the one maximizing F1, trying midpoints between consecutive distinct scores
 * (so the threshold sits in the gap, not on an example) and taking the larger
 * on ties. Without: the 99th percentile of good scores times 1.1.
 */
export function chooseThreshold(
  scores: readonly number[],
  labels: readonly boolean[],
): ThresholdChoice {
  const defects = labels.filter(Boolean).length;
  const goodScores = scores.filter((_, i) => !labels[i]);
  if (defects === 0) {
    if (goodScores.length === 0) throw new RangeError('no scores to choose a threshold from');
    return {
      threshold: quantile(goodScores, GOOD_QUANTILE) * GOOD_QUANTILE_MARGIN,
      rule: 'good-quantile',
    };
  }
  const order = scores
    .map((_, i) => i)
    .sort((a, b) => (scores[b] as number) - (scores[a] as number));
  // Walk thresholds from high to low; after taking every score >= s, the next
  // candidate sits halfway to the next lower distinct score.
  let tp = 0;
  let fp = 0;
  let bestF1 = -1;
  let best = (scores[order[0] as number] as number) + 1;
  for (let start = 0; start < order.length;) {
    let end = start;
    const value = scores[order[start] as number] as number;
    while (end < order.length && scores[order[end] as number] === value) {
      if (labels[order[end] as number]) tp++;
      else fp++;
      end++;
    }
    const next =
      end < order.length
        ? (scores[order[end] as number] as number)
        : value - Math.max(1e-6, Math.abs(value) * 1e-3);
    const candidate = (value + next) / 2;
    const f1 = (2 * tp) / (2 * tp + fp + (defects - tp));
    if (f1 > bestF1) {
      bestF1 = f1;
      best = candidate;
    }
    start = end;
  }
  return { threshold: best, rule: 'max-f1' };
}

/** Linear-interpolated quantile (q in [0, 1]) of a non-empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const pos = Math.min(1, Math.max(0, q)) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

/** Without defect examples: the 99th percentile of good validation scores plus a tenth of their spread. */
export function goodQuantileThreshold(goodScores: readonly number[]): {
  threshold: number;
  rule: 'good-quantile';
} {
  const q99 = quantile(goodScores, 0.99);
  const q50 = quantile(goodScores, 0.5);
  return { threshold: q99 + 0.1 * Math.max(q99 - q50, 1e-3), rule: 'good-quantile' };
}

/** A validation threshold and, when recent samples chose it, how many. */
export interface ValidationThreshold {
  threshold: number;
  rule: ThresholdRule;
  /** Recent validation images the threshold was chosen on alone; absent: on all of them. */
  recentImages?: number;
}

/**
 * The threshold a training takes from its validation split: when the split's
 * recent samples (`TrainingSample.recent`) include good and defect images,
 * max-F1 on those alone, so that it fits the line as it is now; else max-F1
 * on the whole split, or without defects the good-score quantile.
 */
export function validationThreshold(
  scores: readonly number[],
  labels: readonly boolean[],
  recent: readonly boolean[],
): ValidationThreshold {
  const mine = scores.flatMap((_, k) => (recent[k] === true ? [k] : []));
  if (mine.some((k) => labels[k]) && mine.some((k) => !labels[k])) {
    const choice = chooseThreshold(
      mine.map((k) => scores[k] as number),
      mine.map((k) => labels[k] as boolean),
    );
    return { ...choice, recentImages: mine.length };
  }
  return labels.some(Boolean)
    ? chooseThreshold(scores, labels)
    : goodQuantileThreshold(scores.filter((_, k) => !labels[k]));
}
