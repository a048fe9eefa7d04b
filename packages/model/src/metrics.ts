/** How well scores separate defects from good images at a threshold. */
export interface EvalMetrics {
  images: number;
  good: number;
  defect: number;
  /** Area under the ROC curve (ties count half); null without both classes. */
  auroc: number | null;
  /** Average precision: area under the precision-recall step curve; null without defects. */
  ap: number | null;
  /** Score at or above which an image is called a defect. */
  threshold: number;
  /** Of images called defects, the share that are; null when none is called a defect. */
  precision: number | null;
  /** Of defects, the share called defects; null without defects. */
  recall: number | null;
  /** Harmonic mean of precision and recall, 2TP / (2TP + FP + FN); null when that is 0/0. */
  f1: number | null;
  truePositives: number;
  falsePositives: number;
  trueNegatives: number;
  falseNegatives: number;
}

/** Computes detection metrics; `labels[i]` is true when image i is a defect. */
export function computeMetrics(
  scores: readonly number[],
  labels: readonly boolean[],
  threshold: number,
): EvalMetrics {
  if (scores.length !== labels.length) {
    throw new RangeError(`${scores.length} scores but ${labels.length} labels`);
  }
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const called = (scores[i] as number) >= threshold;
    if (labels[i]) {
      if (called) tp++;
      else fn++;
    } else if (called) fp++;
    else tn++;
  }
  const defect = tp + fn;
  const good = fp + tn;
  return {
    images: scores.length,
    good,
    defect,
    auroc: auroc(scores, labels),
    ap: averagePrecision(scores, labels),
    threshold,
    precision: tp + fp === 0 ? null : tp / (tp + fp),
    recall: defect === 0 ? null : tp / defect,
    f1: 2 * tp + fp + fn === 0 ? null : (2 * tp) / (2 * tp + fp + fn),
    truePositives: tp,
    falsePositives: fp,
    trueNegatives: tn,
    falseNegatives: fn,
  };
}

/**
 * Area under the ROC curve as the Mann-Whitney rank statistic, with tied
 * scores given their average rank; null unless both classes are present.
 */
export function auroc(scores: readonly number[], labels: readonly boolean[]): number | null {
  const positives = labels.filter(Boolean).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return null;
  const order = scores
    .map((_, i) => i)
    .sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let positiveRankSum = 0;
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    const value = scores[order[start] as number];
    while (end < order.length && scores[order[end] as number] === value) end++;
    // Ranks start..end-1 (1-based start+1..end) share their average.
    const averageRank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++)
      if (labels[order[k] as number]) positiveRankSum += averageRank;
    start = end;
  }
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * Average precision: sum over distinct score thresholds, from high to low, of
 * (recall gained) x (precision there); tied scores enter together. Null without defects.
 */
export function averagePrecision(
  scores: readonly number[],
  labels: readonly boolean[],
): number | null {
  const positives = labels.filter(Boolean).length;
  if (positives === 0) return null;
  const order = scores
    .map((_, i) => i)
    .sort((a, b) => (scores[b] as number) - (scores[a] as number));
  let tp = 0;
  let called = 0;
  let ap = 0;
  for (let start = 0; start < order.length;) {
    let end = start;
    const value = scores[order[start] as number];
    let gained = 0;
    while (end < order.length && scores[order[end] as number] === value) {
      if (labels[order[end] as number]) gained++;
      end++;
    }
    tp += gained;
    called = end;
    if (gained > 0) ap += (gained / positives) * (tp / called);
    start = end;
  }
  return ap;
}
