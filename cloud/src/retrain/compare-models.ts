import type { HeldOutMetrics } from './retrain-store.ts';
import type { CompareMetric } from './retrain-settings.ts';

/** Whether the challenger wins, by how much, and why not when it does not. */
export interface Comparison {
  wins: boolean;
  improvement: number | null;
  reason: string;
}

/**
 * The challenger wins when its metric on the held-out set exceeds the
 * champion's by at least `minImprovement`, and (unless `maxF1Drop` is null or
 * the metric is F1) its held-out F1 is not more than `maxF1Drop` below the
 * champion's: a model that ranks the line better but calls it worse at its
 * threshold is not a fix. A metric that cannot be computed (null: the set
 * lacks a class) never wins.
 */
export function compareModels(
  champion: HeldOutMetrics,
  challenger: HeldOutMetrics,
  metric: CompareMetric,
  minImprovement: number,
  maxF1Drop: number | null = null,
): Comparison {
  const a = champion[metric];
  const b = challenger[metric];
  if (a === null || b === null)
    return {
      wins: false,
      improvement: null,
      reason: `${metric} cannot be computed on the held-out set (champion ${String(a)}, challenger ${String(b)})`,
    };
  const improvement = b - a;
  const wins = improvement >= minImprovement;
  const reason = `held-out ${metric}: challenger ${b.toFixed(4)} vs champion ${a.toFixed(4)} (${improvement >= 0 ? '+' : ''}${improvement.toFixed(4)}; needs +${minImprovement})`;
  if (wins && maxF1Drop !== null && metric !== 'f1') {
    // F1 is null only when no image is a defect or called one: then there is nothing to lose.
    const f1Champion = champion.f1 ?? 0;
    const f1Challenger = challenger.f1 ?? 0;
    if (f1Challenger < f1Champion - maxF1Drop)
      return {
        wins: false,
        improvement,
        reason: `${reason}, but held-out f1 challenger ${f1Challenger.toFixed(4)} vs champion ${f1Champion.toFixed(4)} falls more than maxF1Drop ${maxF1Drop} below it: its threshold calls the line worse`,
      };
  }
  return { wins, improvement, reason };
}
