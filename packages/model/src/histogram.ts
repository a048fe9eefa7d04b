import type { Histogram } from '@linesight/vision';
import { round6 } from './round6.ts';

/**
 * Counts values into `bins` equal bins between `min` and `max`. Values below
 * `min` count in the first bin and values above `max` in the last, so live
 * data binned the same way always sums to its count (what PSI needs).
 */
export function fixedHistogram(
  values: readonly number[],
  min: number,
  max: number,
  bins: number,
): Histogram {
  if (!(max > min) || !Number.isInteger(bins) || bins < 1)
    throw new RangeError(`bad histogram range [${min}, ${max}] x ${bins}`);
  const width = (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) =>
    // At most 6 significant digits, so contract JSON stays short and stable.
    round6(min + i * width),
  );
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) {
    const bin = Math.min(bins - 1, Math.max(0, Math.floor((v - min) / width)));
    counts[bin] = (counts[bin] as number) + 1;
  }
  return { edges, counts };
}
