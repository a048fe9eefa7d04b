/**
 * Per-cell standardization of pyramid features against good training images,
 * and the optional novelty channel: log(1 + mean over channels of z^2), a
 * diagonal-Mahalanobis distance of each cell from good cells at that position
 * (PaDiM-like). It lets the cell classifier use "unlike anything good" as well
 * as "like the defects it was shown", which matters when it only saw synthetic
 * defects. The graph in `pyramid-graph.ts` computes exactly this.
 */

/** What standardization needs: per channel and cell mean and 1/std, and whether novelty is appended. */
export interface Standardization {
  featureMean: Float32Array;
  featureInvStd: Float32Array;
  /** Append the novelty channel after the standardized features; false unless given. */
  novelty?: boolean;
}

/** Channels the cell classifier sees for `channels` feature channels. */
export function headInputs(channels: number, s: Pick<Standardization, 'novelty'>): number {
  return channels + (s.novelty === true ? 1 : 0);
}

/** Standardizes features (channels x cells) and appends the novelty channel when asked. */
export function standardizeCells(
  features: Float32Array,
  cells: number,
  s: Standardization,
): Float32Array {
  const length = features.length;
  const z = new Float32Array(length + (s.novelty === true ? cells : 0));
  for (let j = 0; j < length; j++)
    z[j] = Math.fround(
      Math.fround((features[j] as number) - (s.featureMean[j] as number)) *
        (s.featureInvStd[j] as number),
    );
  if (s.novelty === true) {
    const channels = length / cells;
    const sums = new Float64Array(cells);
    for (let c = 0; c < channels; c++) {
      const base = c * cells;
      for (let i = 0; i < cells; i++) {
        const v = Math.fround((z[base + i] as number) * (z[base + i] as number));
        sums[i] = (sums[i] as number) + v;
      }
    }
    for (let i = 0; i < cells; i++)
      z[length + i] = Math.fround(
        Math.log(Math.fround(Math.fround((sums[i] as number) / channels) + 1)),
      );
  }
  return z;
}
