import type { FittedScorer } from './fitted-scorer.ts';
import { PADIM_MAP_BLUR_PASSES } from './padim-map.ts';
import { selectNeighbours } from './padim-neighbours.ts';
import { padimScoreUnit, padimSummary } from './padim-summary.ts';
import { fitPadim, padimFeatures, padimGrid, centreCells, whitenCells } from './padim.ts';
import { baseChannels, gridSide, peakChannels, type PyramidGeometry } from './pyramid-features.ts';
import type { PadimModelParams } from './pyramid-graph.ts';
import type { TrainFeatures } from './training-features.ts';
import type { TrainingProgress } from './training-result.ts';

/**
 * A per-position Gaussian of the good training parts (see padim.ts), and
 * with `neighbours` the good parts kept per position (padim-neighbours.ts).
 */
export function fitPadimScorer(
  trainFeatures: readonly TrainFeatures[],
  geometry: PyramidGeometry,
  report: (progress: TrainingProgress) => void,
  options: {
    maxPoolPeaks?: boolean;
    scoreTop?: number;
    minusMedian?: boolean;
    /** Score by the nearest of this many good neighbours per cell (`padim-neighbours.ts`). */
    neighbours?: number;
  },
): FittedScorer<PadimModelParams> {
  const started = performance.now();
  // PaDiM reads the base channels only (the first ones when relative channels follow).
  const channels = baseChannels(geometry);
  const grid = gridSide(geometry);
  const peaks = options.maxPoolPeaks === true ? peakChannels(geometry) : undefined;
  const pooled = trainFeatures
    .filter((t) => !t.defect)
    .map((t) => padimFeatures(t.features, channels, grid, peaks));
  const padim = fitPadim(
    pooled,
    channels,
    padimGrid(grid),
    (done, total) => {
      if (done % 16 === 0 || done === total)
        report({ step: 'fit', done, total, elapsedMs: performance.now() - started });
    },
    peaks,
  );
  if (options.neighbours !== undefined) {
    const whitened = pooled.map((x) => whitenCells(centreCells(x, padim), padim));
    padim.neighbours = selectNeighbours(whitened, padim.whitening, channels, options.neighbours);
  }
  // The top cells cover the same share of the part at any model size.
  const top = Math.max(1, Math.round(((options.scoreTop ?? 1) * padim.grid ** 2) / 256));
  if (top > 1) padim.scoreTop = top;
  if (options.minusMedian === true) padim.scoreMinusMedian = true;
  padim.mapBlurPasses = PADIM_MAP_BLUR_PASSES;
  return {
    params: { kind: 'padim', geometry, padim },
    summary: {
      scorer: 'padim',
      ...padimSummary(padim),
      scoreUnit: padimScoreUnit(padim),
    },
  };
}
