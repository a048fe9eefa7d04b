/**
 * The anomaly scorer for training without defect examples: a per-position
 * Gaussian of good parts' cell features with a full covariance (PaDiM
 * style, on the pyramid filter-bank features instead of a pretrained CNN).
 *
 * The base pyramid features are averaged over 2x2 cells (a 32x32 grid at
 * 256 px becomes 16x16: coarse enough for a covariance per position from a
 * few hundred good images, fine enough for small defects), made relative to
 * the part's own mean, and compared with the good parts at the same position
 * by Mahalanobis distance: that distance squared per cell, divided by the
 * channel count. Models trained since 2026-11-28 also keep good neighbours
 * per position (`padim-neighbours.ts`), and their map and image score read
 * each cell's distance to the nearest neighbour instead; before, the map was
 * the distance and the image score the map's maximum (supervised fusion) or,
 * in anomaly mode, the mean of its largest cells minus its median cell, with
 * the peak channels max-pooled (5-fold MTD image AUROC 0.860 -> 0.911
 * together).
 *
 * On MTD (`bench model --mode anomaly`, three held-out splits) this gives
 * image AUROC 0.852 / 0.861 / 0.853, against 0.77-0.83 for the cell
 * classifier trained on synthetic defects and 0.72-0.78 for a diagonal
 * covariance. Supervised models add its score to the classifier's.
 * `pyramid-graph.ts` computes the same in ONNX, in float32 where this file
 * sums in float64 (the parity tests hold them within 1e-4).
 */

import type { PadimNeighbours } from './padim-neighbours.ts';

/** Cells averaged per side before the Gaussian. */
export const PADIM_POOL = 2;
/** Least shrinkage of each covariance towards a scaled identity (more when data is scarce). */
export const PADIM_MIN_SHRINKAGE = 0.1;

/** A fitted per-position Gaussian, stored as whitening matrices. */
export interface PadimParams {
  /** Side of the pooled grid. */
  grid: number;
  channels: number;
  /**
   * Channels pooled to the grid by their maximum instead of their mean (the
   * max-pooled peak channels of the finest levels: a thin crack's peak is
   * diluted fourfold by an average); none unless given.
   */
  maxPooled?: ChannelRange;
  /**
   * The image score is the mean of the map's `scoreTop` largest cells (a
   * defect spans a few cells, a good part's one noisy cell stands alone); the
   * maximum (1) unless given.
   */
  scoreTop?: number;
  /**
   * Minus the map's median cell (the (cells/2 + 1)-th largest): a part that is
   * unlike the training parts all over (texture, placement) is not a defect,
   * one that stands out in a few cells from its own typical distance is; false
   * unless given.
   */
  scoreMinusMedian?: boolean;
  /**
   * The output map (the distance or, with `neighbours`, the nearest-neighbour
   * map) is blurred by this many 3x3 binomial passes and bilinearly
   * upsampled to the feature grid (`padim-map.ts`); unset: the raw map
   * (anomaly mode) or its nearest upsampling (supervised), as models trained
   * before it.
   */
  mapBlurPasses?: number;
  /**
   * The map and the image score (`scoreTop`, `scoreMinusMedian`) are each
   * cell's distance to its nearest good neighbour instead of the Gaussian
   * distance (see `padim-neighbours.ts`). Unset in models trained before
   * 2026-11-28.
   */
  neighbours?: PadimNeighbours;
  /** Mean of good parts' pooled relative features, cells x channels. */
  mean: Float32Array;
  /**
   * Per cell a channels x channels matrix W with |d W|^2 = d^T Sigma^-1 d / channels
   * (row vector d = features - mean): cells x channels x channels.
   */
  whitening: Float32Array;
}

/** Consecutive channels: `first` .. `first + count - 1`. */
export interface ChannelRange {
  first: number;
  count: number;
}

/** The side of the pooled grid for a feature grid. */
export function padimGrid(featureGrid: number): number {
  return featureGrid % PADIM_POOL === 0 && featureGrid >= 2 * PADIM_POOL
    ? featureGrid / PADIM_POOL
    : featureGrid;
}

/**
 * Pools base features (channels x featureGrid^2, as `pyramidFeatures` gives
 * them) to the PaDiM grid (the `maxPooled` channels by their maximum, the
 * others by their mean) and subtracts each channel's mean over the part, in
 * float32 as the graph does. Returns cells x channels.
 */
export function padimFeatures(
  features: Float32Array,
  channels: number,
  featureGrid: number,
  maxPooled?: ChannelRange,
): Float32Array {
  const grid = padimGrid(featureGrid);
  const pool = featureGrid / grid;
  const cells = grid * grid;
  const out = new Float32Array(cells * channels);
  const pooled = new Float32Array(cells);
  for (let c = 0; c < channels; c++) {
    const plane = c * featureGrid * featureGrid;
    const byMax =
      maxPooled !== undefined && c >= maxPooled.first && c < maxPooled.first + maxPooled.count;
    let sum = 0;
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        let s = 0;
        let top = -Infinity;
        for (let dy = 0; dy < pool; dy++)
          for (let dx = 0; dx < pool; dx++) {
            const value = features[
              plane + (gy * pool + dy) * featureGrid + gx * pool + dx
            ] as number;
            s += value;
            if (value > top) top = value;
          }
        const v = byMax ? top : Math.fround(s / (pool * pool));
        pooled[gy * grid + gx] = v;
        sum += v;
      }
    }
    const mean = Math.fround(sum / cells);
    for (let k = 0; k < cells; k++)
      out[k * channels + c] = Math.fround((pooled[k] as number) - mean);
  }
  return out;
}

/**
 * Fits the per-position Gaussians on good parts' `padimFeatures`. Each
 * covariance is shrunk towards its mean variance by the Ledoit-Wolf amount,
 * but at least PADIM_MIN_SHRINKAGE, so it stays well conditioned with fewer
 * images than channels. Plain float64 arithmetic in a fixed order:
 * deterministic for the same inputs.
 */
export function fitPadim(
  goodFeatures: readonly Float32Array[],
  channels: number,
  grid: number,
  onCell?: (done: number, total: number) => void,
  maxPooled?: ChannelRange,
): PadimParams {
  const n = goodFeatures.length;
  if (n < 2) throw new RangeError('fitPadim needs at least 2 good images');
  const cells = grid * grid;
  const mean = new Float32Array(cells * channels);
  const whitening = new Float32Array(cells * channels * channels);
  const mu = new Float64Array(channels);
  const cov = new Float64Array(channels * channels);
  const x = new Float64Array(channels);
  for (let k = 0; k < cells; k++) {
    mu.fill(0);
    for (const f of goodFeatures)
      for (let c = 0; c < channels; c++)
        mu[c] = (mu[c] as number) + (f[k * channels + c] as number);
    for (let c = 0; c < channels; c++) {
      mu[c] = (mu[c] as number) / n;
      mean[k * channels + c] = mu[c] as number;
    }
    cov.fill(0);
    for (const f of goodFeatures) {
      for (let c = 0; c < channels; c++) x[c] = (f[k * channels + c] as number) - (mu[c] as number);
      for (let a = 0; a < channels; a++) {
        const xa = x[a] as number;
        for (let b = a; b < channels; b++)
          cov[a * channels + b] = (cov[a * channels + b] as number) + xa * (x[b] as number);
      }
    }
    for (let a = 0; a < channels; a++) {
      for (let b = a; b < channels; b++) {
        const v = (cov[a * channels + b] as number) / n;
        cov[a * channels + b] = v;
        cov[b * channels + a] = v;
      }
    }
    const lambda = Math.max(PADIM_MIN_SHRINKAGE, ledoitWolf(goodFeatures, k, mu, cov, channels));
    let variance = 0;
    for (let a = 0; a < channels; a++) variance += cov[a * channels + a] as number;
    variance = Math.max(variance / channels, 1e-6);
    for (let a = 0; a < channels; a++)
      for (let b = 0; b < channels; b++)
        cov[a * channels + b] =
          (1 - lambda) * (cov[a * channels + b] as number) + (a === b ? lambda * variance : 0);
    whitening.set(whiteningMatrix(cov, channels), k * channels * channels);
    onCell?.(k + 1, cells);
  }
  return { grid, channels, ...(maxPooled !== undefined ? { maxPooled } : {}), mean, whitening };
}

/** Pooled relative features (cells x channels) minus the good mean, float32 as the graph. */
export function centreCells(x: Float32Array, params: PadimParams): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] as number) - (params.mean[i] as number);
  return out;
}

/**
 * Centred cells (cells x channels) times each cell's whitening matrix: cells x
 * channels, float32 as the graph's product (each sum in float64, rounded once).
 */
export function whitenCells(centred: Float32Array, params: PadimParams): Float32Array {
  const { channels, grid, whitening } = params;
  const cells = grid * grid;
  const out = new Float32Array(cells * channels);
  for (let k = 0; k < cells; k++) {
    const w = k * channels * channels;
    for (let j = 0; j < channels; j++) {
      let y = 0;
      for (let a = 0; a < channels; a++)
        y += (centred[k * channels + a] as number) * (whitening[w + a * channels + j] as number);
      out[k * channels + j] = y;
    }
  }
  return out;
}

/** Per cell Mahalanobis distance squared / channels (float32, as the graph), cells long. */
export function padimMap(x: Float32Array, params: PadimParams): Float32Array {
  return distanceOfWhitened(whitenCells(centreCells(x, params), params), params.channels);
}

/** Each cell's squared norm of its whitened row: PaDiM's distance map (float32 steps). */
export function distanceOfWhitened(whitened: Float32Array, channels: number): Float32Array {
  const cells = whitened.length / channels;
  const map = new Float32Array(cells);
  for (let k = 0; k < cells; k++) {
    let q = 0;
    for (let j = 0; j < channels; j++) {
      const y = whitened[k * channels + j] as number;
      q += Math.fround(y * y);
    }
    map[k] = Math.fround(q);
  }
  return map;
}

/**
 * The image score: the map's maximum, or the mean of its `top` largest cells,
 * minus its median cell when asked (float32, as the graph).
 */
export function padimScore(map: Float32Array, top = 1, minusMedian = false): number {
  const descending = Float32Array.from(map).sort().reverse();
  const k = Math.max(1, Math.min(top, map.length));
  let sum = 0;
  for (let i = 0; i < k; i++) sum += descending[i] as number;
  const high = k === 1 ? (descending[0] as number) : Math.fround(sum / k);
  if (!minusMedian) return high;
  return Math.fround(high - (descending[medianRank(map.length)] as number));
}

/** Index of the median cell among the cells in descending order (the graph's TopK has this + 1). */
export function medianRank(cells: number): number {
  return Math.floor(cells / 2);
}

/**
 * The Ledoit-Wolf shrinkage intensity towards a scaled identity for cell k
 * (`cov` is the sample covariance with mean `mu`).
 */
function ledoitWolf(
  features: readonly Float32Array[],
  k: number,
  mu: Float64Array,
  cov: Float64Array,
  channels: number,
): number {
  const n = features.length;
  let trace = 0;
  for (let a = 0; a < channels; a++) trace += cov[a * channels + a] as number;
  const m = trace / channels;
  let d2 = 0;
  let s2 = 0;
  for (let a = 0; a < channels; a++) {
    for (let b = 0; b < channels; b++) {
      const v = cov[a * channels + b] as number;
      s2 += v * v;
      const off = v - (a === b ? m : 0);
      d2 += off * off;
    }
  }
  if (d2 <= 0) return 1;
  const x = new Float64Array(channels);
  let spread = 0;
  for (const f of features) {
    let norm2 = 0;
    for (let c = 0; c < channels; c++) {
      x[c] = (f[k * channels + c] as number) - (mu[c] as number);
      norm2 += (x[c] as number) ** 2;
    }
    let quad = 0;
    for (let a = 0; a < channels; a++) {
      let t = 0;
      for (let b = 0; b < channels; b++) t += (cov[a * channels + b] as number) * (x[b] as number);
      quad += (x[a] as number) * t;
    }
    spread += norm2 * norm2 - 2 * quad + s2;
  }
  return Math.min(spread / (n * n), d2) / d2;
}

/**
 * W = (L^-1)^T / sqrt(channels) for the Cholesky factor L of cov, so that
 * |d W|^2 = d^T cov^-1 d / channels.
 */
function whiteningMatrix(cov: Float64Array, p: number): Float32Array {
  const l = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = cov[i * p + j] as number;
      for (let t = 0; t < j; t++) s -= (l[i * p + t] as number) * (l[j * p + t] as number);
      if (i === j) l[i * p + i] = Math.sqrt(Math.max(s, 1e-12));
      else l[i * p + j] = s / (l[j * p + j] as number);
    }
  }
  // inv = L^-1 (lower triangular), by forward substitution column by column.
  const inv = new Float64Array(p * p);
  for (let col = 0; col < p; col++) {
    for (let i = col; i < p; i++) {
      let s = i === col ? 1 : 0;
      for (let t = col; t < i; t++) s -= (l[i * p + t] as number) * (inv[t * p + col] as number);
      inv[i * p + col] = s / (l[i * p + i] as number);
    }
  }
  // y = L^-1 d, so y_j = sum_a inv[j][a] d_a, and W[a][j] = inv[j][a] / sqrt(p).
  const scale = 1 / Math.sqrt(p);
  const w = new Float32Array(p * p);
  for (let a = 0; a < p; a++)
    for (let j = 0; j < p; j++) w[a * p + j] = (inv[j * p + a] as number) * scale;
  return w;
}
