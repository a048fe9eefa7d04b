import type { FilterKernel, SeparableTerm } from './filter-kernels.ts';

/** Everything that defines a filter-bank anomaly model's forward pass. */
export interface FilterBankParams {
  inputWidth: number;
  inputHeight: number;
  /** The bank; every kernel has the same odd size. */
  filters: FilterKernel[];
  /** Side of the average-pooling window that turns |response| into local energy. */
  poolSize: number;
  poolStride: number;
  /** Per-filter energy mean and 1/std over good training images. */
  channelMean: Float32Array;
  channelInvStd: Float32Array;
  /** Side of the window averaged over the anomaly map before taking the maximum as score. */
  scorePoolSize: number;
}

/** A single-channel grid of float32 values, row-major. */
export interface Grid {
  width: number;
  height: number;
  data: Float32Array;
}

/** Per-filter local energies: `channels` planes of `width` x `height`. */
export interface Energies extends Grid {
  channels: number;
}

/** Sizes of the intermediate grids for a geometry. */
export function filterBankGeometry(
  params: Pick<
    FilterBankParams,
    'inputWidth' | 'inputHeight' | 'filters' | 'poolSize' | 'poolStride'
  >,
): {
  kernelSize: number;
  convWidth: number;
  convHeight: number;
  mapWidth: number;
  mapHeight: number;
} {
  const first = params.filters[0];
  if (first === undefined) throw new RangeError('filter bank is empty');
  const kernelSize = first.size;
  if (
    params.filters.some(
      (f) => f.size !== kernelSize || f.weights.length !== kernelSize * kernelSize,
    )
  ) {
    throw new RangeError('all filters must share one kernel size');
  }
  const convWidth = params.inputWidth - kernelSize + 1;
  const convHeight = params.inputHeight - kernelSize + 1;
  const mapWidth = Math.floor((convWidth - params.poolSize) / params.poolStride) + 1;
  const mapHeight = Math.floor((convHeight - params.poolSize) / params.poolStride) + 1;
  if (mapWidth < 1 || mapHeight < 1)
    throw new RangeError('input is too small for the kernel and pooling window');
  return { kernelSize, convWidth, convHeight, mapWidth, mapHeight };
}

/**
 * Reference for the graph's first half: Conv (valid, no bias) -> Abs ->
 * AveragePool. Sums in float64 and rounds the Conv output to float32, which
 * agrees with ONNX Runtime's float32 arithmetic to about 1e-6 relative.
 */
export function filterBankEnergies(
  input: Float32Array,
  params: Pick<
    FilterBankParams,
    'inputWidth' | 'inputHeight' | 'filters' | 'poolSize' | 'poolStride'
  >,
): Energies {
  const { kernelSize, convWidth, convHeight, mapWidth, mapHeight } = filterBankGeometry(params);
  const { inputWidth, poolSize, poolStride } = params;
  if (input.length !== inputWidth * params.inputHeight) {
    throw new RangeError(
      `input has ${input.length} values, expected ${inputWidth * params.inputHeight}`,
    );
  }
  const channels = params.filters.length;
  const out = new Float32Array(channels * mapWidth * mapHeight);
  const response = new Float64Array(convWidth * convHeight);
  const scratch = new Float64Array(inputWidth * convHeight);
  const columnSums = new Float64Array(convWidth);
  const poolArea = poolSize * poolSize;
  const geometry = { inputWidth, kernelSize, convWidth, convHeight };
  for (let c = 0; c < channels; c++) {
    const filter = params.filters[c] as FilterKernel;
    response.fill(0);
    if (filter.separable === undefined) convolveDense(input, filter.weights, response, geometry);
    else
      for (const term of filter.separable)
        convolveSeparable(input, term, response, scratch, geometry);
    const plane = c * mapWidth * mapHeight;
    for (let my = 0; my < mapHeight; my++) {
      columnSums.fill(0);
      for (let dy = 0; dy < poolSize; dy++) {
        const row = (my * poolStride + dy) * convWidth;
        for (let x = 0; x < convWidth; x++)
          // fround: ONNX Runtime stores the Conv output as float32 before Abs.
          columnSums[x] =
            (columnSums[x] as number) + Math.abs(Math.fround(response[row + x] as number));
      }
      for (let mx = 0; mx < mapWidth; mx++) {
        let sum = 0;
        for (let dx = 0; dx < poolSize; dx++) sum += columnSums[mx * poolStride + dx] as number;
        out[plane + my * mapWidth + mx] = sum / poolArea;
      }
    }
  }
  return { channels, width: mapWidth, height: mapHeight, data: out };
}

/**
 * Reference for the graph's second half: per-filter z-score, Relu, square,
 * mean over filters, Sqrt. A cell's value is the root-mean-square of the
 * positive z-scores there: about 0-1 on good texture, several units on a defect.
 */
export function anomalyMapFromEnergies(
  energies: Energies,
  params: Pick<FilterBankParams, 'channelMean' | 'channelInvStd'>,
): Grid {
  const { channels, width, height } = energies;
  const cells = width * height;
  const sum = new Float32Array(cells);
  const weight = Math.fround(1 / channels);
  for (let c = 0; c < channels; c++) {
    const mean = params.channelMean[c] as number;
    const invStd = params.channelInvStd[c] as number;
    const plane = c * cells;
    for (let i = 0; i < cells; i++) {
      const z = Math.fround(Math.fround((energies.data[plane + i] as number) - mean) * invStd);
      if (z > 0) sum[i] = (sum[i] as number) + Math.fround(z * z) * weight;
    }
  }
  const data = new Float32Array(cells);
  for (let i = 0; i < cells; i++) data[i] = Math.sqrt(sum[i] as number);
  return { width, height, data };
}

/** Reference for the score: the largest mean over `scorePoolSize` x `scorePoolSize` windows of the map. */
export function scoreFromMap(map: Grid, scorePoolSize: number): number {
  const { width, height, data } = map;
  const size = Math.min(scorePoolSize, width, height);
  let best = -Infinity;
  for (let y = 0; y + size <= height; y++) {
    for (let x = 0; x + size <= width; x++) {
      let sum = 0;
      for (let dy = 0; dy < size; dy++) {
        for (let dx = 0; dx < size; dx++) sum += data[(y + dy) * width + x + dx] as number;
      }
      best = Math.max(best, sum / (size * size));
    }
  }
  return Math.fround(best);
}

/** The whole forward pass in plain TypeScript, mirroring the exported ONNX graph. */
export function filterBankForward(
  input: Float32Array,
  params: FilterBankParams,
): { score: number; map: Grid } {
  const map = anomalyMapFromEnergies(filterBankEnergies(input, params), params);
  return { score: scoreFromMap(map, params.scorePoolSize), map };
}

interface ConvGeometry {
  inputWidth: number;
  kernelSize: number;
  convWidth: number;
  convHeight: number;
}

/** Valid 2-D correlation (what ONNX Conv computes), skipping zero taps; adds into `out`. */
function convolveDense(
  input: Float32Array,
  weights: Float32Array,
  out: Float64Array,
  g: ConvGeometry,
): void {
  for (let ky = 0; ky < g.kernelSize; ky++) {
    for (let kx = 0; kx < g.kernelSize; kx++) {
      const w = weights[ky * g.kernelSize + kx] as number;
      if (w === 0) continue;
      for (let y = 0; y < g.convHeight; y++) {
        const src = (y + ky) * g.inputWidth + kx;
        const dst = y * g.convWidth;
        for (let x = 0; x < g.convWidth; x++)
          out[dst + x] = (out[dst + x] as number) + w * (input[src + x] as number);
      }
    }
  }
}

/** The same correlation for one rank-1 term: a vertical 1-D pass, then a horizontal one; adds into `out`. */
function convolveSeparable(
  input: Float32Array,
  term: SeparableTerm,
  out: Float64Array,
  scratch: Float64Array,
  g: ConvGeometry,
): void {
  scratch.fill(0);
  for (let ky = 0; ky < g.kernelSize; ky++) {
    const w = term.vertical[ky] as number;
    if (w === 0) continue;
    for (let y = 0; y < g.convHeight; y++) {
      const src = (y + ky) * g.inputWidth;
      const dst = y * g.inputWidth;
      for (let x = 0; x < g.inputWidth; x++)
        scratch[dst + x] = (scratch[dst + x] as number) + w * (input[src + x] as number);
    }
  }
  for (let kx = 0; kx < g.kernelSize; kx++) {
    const w = term.horizontal[kx] as number;
    if (w === 0) continue;
    for (let y = 0; y < g.convHeight; y++) {
      const src = y * g.inputWidth + kx;
      const dst = y * g.convWidth;
      for (let x = 0; x < g.convWidth; x++)
        out[dst + x] = (out[dst + x] as number) + w * (scratch[src + x] as number);
    }
  }
}
