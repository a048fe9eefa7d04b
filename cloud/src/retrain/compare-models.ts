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
 * champion's by at least `minImprovement`. A metric that cannot be computed
 * (null: the set lacks a class) never wins.
 */
export function compareModels(
  champion: HeldOutMetrics,
  challenger: HeldOutMetrics,
  metric: CompareMetric,
  minImprovement: number,
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
  return {
    wins,
    improvement,
    reason: `held-out ${metric}: challenger ${b.toFixed(4)} vs champion ${a.toFixed(4)} (${improvement >= 0 ? '+' : ''}${improvement.toFixed(4)}; needs +${minImprovement})`,
  };
}
