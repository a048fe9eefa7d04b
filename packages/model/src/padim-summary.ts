import { PADIM_MIN_SHRINKAGE, type PadimParams } from './padim.ts';

/** What a trained model's summary records about its PaDiM, alone or fused. */
export function padimSummary(padim: PadimParams) {
  return {
    padimGrid: padim.grid,
    padimMinShrinkage: PADIM_MIN_SHRINKAGE,
    padimPeakPooling: padim.maxPooled !== undefined ? 'max' : 'mean',
    padimScoreTop: padim.scoreTop ?? 1,
    padimScoreMinusMedian: padim.scoreMinusMedian === true,
    padimMapBlurPasses: padim.mapBlurPasses ?? null,
    padimNeighbours: padim.neighbours?.count ?? 0,
  };
}

/** The unit of PaDiM's image score, as the summary of an anomaly-mode model states it. */
export function padimScoreUnit(padim: PadimParams): string {
  const distance =
    padim.neighbours !== undefined
      ? 'squared whitened distance per channel to the nearest good neighbour'
      : 'Mahalanobis distance squared per channel';
  const top = padim.scoreTop ?? 1;
  const cells = top > 1 ? `mean of the ${top} largest cells` : 'maximum over cells';
  const median = padim.scoreMinusMedian === true ? ' minus the median cell' : '';
  return `${distance} (${cells}${median})`;
}
