/**
 * PaDiM's nearest good neighbours (PatchCore style): per cell position, a
 * few good training parts' features in the Gaussian's whitened space, and a
 * map of each cell's squared distance to the nearest of them. One Gaussian
 * per position describes one kind of good texture; the neighbours keep
 * several, so a good part whose grinding differs from the average good part
 * but matches some good parts is not novel, while a faint defect stays far
 * from all of them. The image score reads this map; the model's map stays
 * the Gaussian's (see padim.ts).
 *
 * On MTD (cached features of 5-fold folds 3-5, seed 1), against the
 * Gaussian's top 16 cells minus the median: anomaly mode 0.887 / 0.954 /
 * 0.878 -> 0.901 / 0.964 / 0.910 with 32 neighbours and the top 8 cells;
 * all 406 good parts as neighbours gave 0.900 / 0.954 / 0.912 (so the 32
 * lose nothing and keep the model small).
 */

/** Good parts kept per cell position (k-center coreset of the training goods). */
export const PADIM_NEIGHBOURS = 32;
/**
 * The neighbour score: the mean of the nearest-neighbour map's largest cells
 * (this many of 256; scaled with the grid), not minus the median: a part's
 * typical cell is already near some good part. On MTD folds 3-5: top 4 / 8 /
 * 16 cells 0.922 / 0.925 / 0.921 (mean), minus the median 0.88-0.90.
 */
export const PADIM_NEIGHBOUR_SCORE_TOP = 8;

/** Per cell, `count` good parts' whitened features. */
export interface PadimNeighbours {
  count: number;
  /**
   * cells x channels x count: column m of cell k's block is neighbour m's
   * whitened features (the layout of the graph's batched MatMul).
   */
  bank: Float32Array;
}

/**
 * Chooses up to `count` neighbours per cell from the good parts' whitened
 * cells (each cells x channels) by greedy k-center: first the part nearest
 * the mean, then each time the part farthest from those chosen, so the kept
 * ones cover every kind of good texture at that position. Deterministic
 * (float64, ties to the lower index).
 */
export function selectNeighbours(
  whitened: readonly Float32Array[],
  cells: number,
  channels: number,
  count: number,
): PadimNeighbours {
  const n = whitened.length;
  if (n < 1) throw new RangeError('selectNeighbours needs at least one good part');
  const m = Math.max(1, Math.min(count, n));
  const bank = new Float32Array(cells * channels * m);
  const nearest = new Float64Array(n);
  for (let k = 0; k < cells; k++) {
    const at = k * channels;
    let pick = 0;
    let least = Infinity;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < channels; c++)
        s += ((whitened[i] as Float32Array)[at + c] as number) ** 2;
      if (s < least) {
        least = s;
        pick = i;
      }
    }
    nearest.fill(Infinity);
    for (let j = 0; j < m; j++) {
      const chosen = whitened[pick] as Float32Array;
      for (let c = 0; c < channels; c++)
        bank[k * channels * m + c * m + j] = chosen[at + c] as number;
      let far = -1;
      let next = 0;
      for (let i = 0; i < n; i++) {
        const w = whitened[i] as Float32Array;
        let s = 0;
        for (let c = 0; c < channels; c++) {
          const diff = (w[at + c] as number) - (chosen[at + c] as number);
          s += diff * diff;
        }
        if (s < (nearest[i] as number)) nearest[i] = s;
        if ((nearest[i] as number) > far) {
          far = nearest[i] as number;
          next = i;
        }
      }
      pick = next;
    }
  }
  return { count: m, bank };
}

/** Each neighbour's squared norm, cells x count, float32 (a weight of the graph). */
export function neighbourNorms(neighbours: PadimNeighbours, channels: number): Float32Array {
  const { count, bank } = neighbours;
  const cells = bank.length / (channels * count);
  const out = new Float32Array(cells * count);
  for (let k = 0; k < cells; k++)
    for (let j = 0; j < count; j++) {
      let s = 0;
      for (let c = 0; c < channels; c++)
        s += (bank[k * channels * count + c * count + j] as number) ** 2;
      out[k * count + j] = s;
    }
  return out;
}

/**
 * Each cell's squared distance to its nearest neighbour, as the graph computes
 * it: |z|^2 (PaDiM's `distance`) + min over neighbours of (|b|^2 - 2 z.b),
 * float32 steps.
 */
export function neighbourMap(
  whitened: Float32Array,
  distance: Float32Array,
  neighbours: PadimNeighbours,
  norms: Float32Array,
  channels: number,
): Float32Array {
  const { count, bank } = neighbours;
  const cells = distance.length;
  const map = new Float32Array(cells);
  for (let k = 0; k < cells; k++) {
    let best = Infinity;
    const block = k * channels * count;
    for (let j = 0; j < count; j++) {
      let dot = 0;
      for (let c = 0; c < channels; c++)
        dot += (whitened[k * channels + c] as number) * (bank[block + c * count + j] as number);
      const offset = Math.fround((norms[k * count + j] as number) - 2 * Math.fround(dot));
      if (offset < best) best = offset;
    }
    map[k] = Math.fround((distance[k] as number) + best);
  }
  return map;
}
