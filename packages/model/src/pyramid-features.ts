/**
 * Multi-scale cell features: the shared front end of the defect model.
 *
 * The input (one grey plane, side `size`) is normalized per image (zero mean,
 * unit variance, so exposure and gain changes between frames do not look like
 * defects), then a 2x average-pool pyramid of `levels` levels is built. Each
 * level is reflect-padded and filtered by a small bank of zero-sum kernels
 * (blobs, edges, lines); positive and negative responses are kept apart
 * (a dark pit and a bright speck differ), average-pooled to one grid of
 * `size / 2^(levels-1)` cells and log-compressed. The coarsest level's
 * intensity is appended, so large dark or bright areas count too.
 *
 * This file is the reference implementation in TypeScript; `pyramid-graph.ts`
 * emits the same computation as ONNX nodes.
 */

/** Side of the small kernels of the bank. */
export const PYRAMID_KERNEL_SIZE = 5;
/** Added before the log of an energy, in units of the image's standard deviation. */
export const ENERGY_EPSILON = 0.05;
/** Added to the image variance before its square root (flat frames stay finite). */
export const VARIANCE_EPSILON = 1e-4;

/** One kernel of the pyramid bank. */
export interface PyramidKernel {
  name: string;
  /** PYRAMID_KERNEL_SIZE^2 weights, row-major. */
  weights: Float32Array;
}

/** The geometry of the feature extractor. */
export interface PyramidGeometry {
  /** Input side in pixels (square input); divisible by 2^(levels-1). */
  size: number;
  levels: number;
  kernels: PyramidKernel[];
  /**
   * The finest levels whose signed responses are also max-pooled to cells
   * (thin, faint lines vanish in an average); 0 unless given.
   */
  maxPoolLevels?: number;
  /**
   * Also give every channel relative to the image's own mean over all cells
   * (the base channels followed by as many relative ones): a cell that differs
   * from the rest of its own part stands out even when the part is darker,
   * rougher or placed differently than the training parts; false unless given.
   */
  relative?: boolean;
}

/** Cell features: `channels` planes of `grid` x `grid`, row-major. */
export interface CellFeatures {
  channels: number;
  grid: number;
  data: Float32Array;
}

/** Side of the cell grid for a geometry. */
export function gridSide(geometry: Pick<PyramidGeometry, 'size' | 'levels'>): number {
  return geometry.size / 2 ** (geometry.levels - 1);
}

/** Number of feature channels: two signs per kernel per level, plus intensity. */
export function featureChannels(
  geometry: Pick<PyramidGeometry, 'levels' | 'kernels' | 'maxPoolLevels' | 'relative'>,
): number {
  return baseChannels(geometry) * (geometry.relative === true ? 2 : 1);
}

/** Channels before the relative copies: two signs per kernel per level (and max level), plus intensity. */
export function baseChannels(
  geometry: Pick<PyramidGeometry, 'levels' | 'kernels' | 'maxPoolLevels'>,
): number {
  return (geometry.levels + maxLevels(geometry)) * geometry.kernels.length * 2 + 1;
}

/**
 * The max-pooled (peak) channels among the base channels: after the
 * average-pooled levels, before intensity; undefined without max-pooled levels.
 */
export function peakChannels(
  geometry: Pick<PyramidGeometry, 'levels' | 'kernels' | 'maxPoolLevels'>,
): { first: number; count: number } | undefined {
  const count = maxLevels(geometry) * geometry.kernels.length * 2;
  return count === 0 ? undefined : { first: geometry.levels * geometry.kernels.length * 2, count };
}

function maxLevels(geometry: Pick<PyramidGeometry, 'levels' | 'maxPoolLevels'>): number {
  return Math.min(geometry.maxPoolLevels ?? 0, geometry.levels - 1);
}

/** Names of the feature channels, in order. */
export function featureNames(
  geometry: Pick<PyramidGeometry, 'levels' | 'kernels' | 'maxPoolLevels' | 'relative'>,
): string[] {
  const names: string[] = [];
  for (let l = 0; l < geometry.levels; l++) {
    for (const sign of ['+', '-'])
      for (const k of geometry.kernels) names.push(`L${l}${sign}${k.name}`);
  }
  for (let l = 0; l < maxLevels(geometry); l++) {
    for (const sign of ['+', '-'])
      for (const k of geometry.kernels) names.push(`L${l}${sign}${k.name}-max`);
  }
  names.push('intensity');
  if (geometry.relative === true) names.push(...names.map((name) => `${name}-rel`));
  return names;
}

/** Checks a geometry; throws RangeError with the reason. */
export function checkGeometry(geometry: PyramidGeometry): void {
  const { size, levels, kernels } = geometry;
  if (!Number.isInteger(levels) || levels < 1 || levels > 6)
    throw new RangeError(`levels must be an integer in 1..6, got ${levels}`);
  const step = 2 ** (levels - 1);
  if (!Number.isInteger(size) || size % step !== 0 || size / step < 4)
    throw new RangeError(`size must be a multiple of ${step} giving at least 4 cells, got ${size}`);
  const coarsest = size / step;
  if (coarsest <= PYRAMID_KERNEL_SIZE / 2)
    throw new RangeError(`size ${size} is too small for ${levels} levels`);
  if (kernels.length === 0) throw new RangeError('kernel bank is empty');
  for (const k of kernels) {
    if (k.weights.length !== PYRAMID_KERNEL_SIZE * PYRAMID_KERNEL_SIZE)
      throw new RangeError(`kernel ${k.name} must have ${PYRAMID_KERNEL_SIZE ** 2} weights`);
  }
}

/**
 * The default bank of 5x5 kernels: Laplacian, centre-minus-surround, Sobel
 * x/y and line detectors at four angles; each sums to zero.
 */
export function pyramidKernels(): PyramidKernel[] {
  const n = PYRAMID_KERNEL_SIZE;
  const kernel = (name: string, f: (y: number, x: number) => number): PyramidKernel => {
    const weights = new Float32Array(n * n);
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) weights[y * n + x] = f(y - 2, x - 2);
    return { name, weights: zeroSum(weights) };
  };
  const box = (r: number) => (y: number, x: number) =>
    Math.abs(y) <= r && Math.abs(x) <= r ? 1 : 0;
  const line = (dy: number, dx: number) => (y: number, x: number) => {
    // Distance from the line through the centre with direction (dy, dx).
    const across = Math.abs(y * dx - x * dy) / Math.hypot(dx, dy);
    return across < 0.5 ? 1 : across >= 1.5 && across < 2.5 ? -1 : 0;
  };
  return [
    kernel('laplacian', (y, x) =>
      y === 0 && x === 0 ? -4 : Math.abs(y) + Math.abs(x) === 1 ? 1 : 0,
    ),
    kernel('centre-surround', (y, x) => box(0)(y, x) - box(2)(y, x) / 25),
    kernel('sobel-x', (y, x) =>
      Math.abs(y) <= 1 && Math.abs(x) === 1 ? (x * (y === 0 ? 2 : 1)) / 4 : 0,
    ),
    kernel('sobel-y', (y, x) =>
      Math.abs(x) <= 1 && Math.abs(y) === 1 ? (y * (x === 0 ? 2 : 1)) / 4 : 0,
    ),
    kernel('line-0', line(0, 1)),
    kernel('line-45', line(1, 1)),
    kernel('line-90', line(1, 0)),
    kernel('line-135', line(1, -1)),
  ];
}

/** Scales the positive and negative taps so that each side sums to +-1 (zero-sum, unit gain). */
function zeroSum(weights: Float32Array): Float32Array {
  let pos = 0;
  let neg = 0;
  for (const w of weights) {
    if (w > 0) pos += w;
    else neg -= w;
  }
  return weights.map((w) => (w > 0 ? w / pos : w < 0 ? w / neg : 0));
}

/** Per-image normalization, as the graph does it: (x - mean) / sqrt(var + eps). */
export function normalizeImage(input: Float32Array): Float32Array {
  let sum = 0;
  for (const v of input) sum += v;
  const mean = Math.fround(sum / input.length);
  let squares = 0;
  const centred = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const c = Math.fround((input[i] as number) - mean);
    centred[i] = c;
    squares += c * c;
  }
  const std = Math.fround(
    Math.sqrt(Math.fround(Math.fround(squares / input.length) + VARIANCE_EPSILON)),
  );
  for (let i = 0; i < centred.length; i++) centred[i] = (centred[i] as number) / std;
  return centred;
}

/** 2x2 average pooling with stride 2 of a side x side plane. */
export function halve(plane: Float32Array, side: number): Float32Array {
  const half = side / 2;
  const out = new Float32Array(half * half);
  for (let y = 0; y < half; y++) {
    const r0 = 2 * y * side;
    const r1 = r0 + side;
    for (let x = 0; x < half; x++) {
      const c = 2 * x;
      out[y * half + x] =
        ((plane[r0 + c] as number) +
          (plane[r0 + c + 1] as number) +
          (plane[r1 + c] as number) +
          (plane[r1 + c + 1] as number)) /
        4;
    }
  }
  return out;
}

/** Reflect-pads a plane by `pad` on every side (ONNX Pad mode 'reflect'). */
function reflectPad(plane: Float32Array, side: number, pad: number): Float32Array {
  const padded = side + 2 * pad;
  const out = new Float32Array(padded * padded);
  const reflect = (i: number): number => (i < 0 ? -i : i >= side ? 2 * side - 2 - i : i);
  for (let y = 0; y < padded; y++) {
    const sy = reflect(y - pad) * side;
    for (let x = 0; x < padded; x++) out[y * padded + x] = plane[sy + reflect(x - pad)] as number;
  }
  return out;
}

/**
 * Computes the cell features of one input plane (`size` x `size`, already
 * scaled as the input spec says). Matches the ONNX graph to float32 rounding.
 */
export function pyramidFeatures(input: Float32Array, geometry: PyramidGeometry): CellFeatures {
  const { size, levels, kernels } = geometry;
  if (input.length !== size * size)
    throw new RangeError(`input has ${input.length} values, expected ${size * size}`);
  const grid = gridSide(geometry);
  const cells = grid * grid;
  const channels = featureChannels(geometry);
  const out = new Float32Array(channels * cells);
  const n = PYRAMID_KERNEL_SIZE;
  const pad = (n - 1) / 2;
  let level = normalizeImage(input);
  let side = size;
  const k = kernels.length;
  for (let l = 0; l < levels; l++) {
    if (l > 0) {
      level = halve(level, side);
      side /= 2;
    }
    const padded = reflectPad(level, side, pad);
    const pw = side + 2 * pad;
    const factor = side / grid;
    const area = factor * factor;
    const response = new Float32Array(side * side);
    for (let f = 0; f < k; f++) {
      const w = (kernels[f] as PyramidKernel).weights;
      response.fill(0);
      // Accumulate tap by tap in float64 scratch rows for accuracy, then round once.
      const acc = new Float64Array(side * side);
      for (let ky = 0; ky < n; ky++) {
        for (let kx = 0; kx < n; kx++) {
          const wt = w[ky * n + kx] as number;
          if (wt === 0) continue;
          for (let y = 0; y < side; y++) {
            const src = (y + ky) * pw + kx;
            const dst = y * side;
            for (let x = 0; x < side; x++)
              acc[dst + x] = (acc[dst + x] as number) + wt * (padded[src + x] as number);
          }
        }
      }
      for (let i = 0; i < acc.length; i++) response[i] = acc[i] as number;
      const posPlane = (l * 2 * k + f) * cells;
      const negPlane = (l * 2 * k + k + f) * cells;
      const withMax = l < maxLevels(geometry);
      const maxPos = ((levels + l) * 2 * k + f) * cells;
      const maxNeg = ((levels + l) * 2 * k + k + f) * cells;
      for (let cy = 0; cy < grid; cy++) {
        for (let cx = 0; cx < grid; cx++) {
          let pos = 0;
          let neg = 0;
          let topPos = 0;
          let topNeg = 0;
          for (let dy = 0; dy < factor; dy++) {
            const row = (cy * factor + dy) * side + cx * factor;
            for (let dx = 0; dx < factor; dx++) {
              const r = response[row + dx] as number;
              if (r > 0) {
                pos += r;
                if (r > topPos) topPos = r;
              } else {
                neg -= r;
                if (-r > topNeg) topNeg = -r;
              }
            }
          }
          out[posPlane + cy * grid + cx] = Math.log(Math.fround(pos / area) + ENERGY_EPSILON);
          out[negPlane + cy * grid + cx] = Math.log(Math.fround(neg / area) + ENERGY_EPSILON);
          if (withMax) {
            out[maxPos + cy * grid + cx] = Math.log(topPos + ENERGY_EPSILON);
            out[maxNeg + cy * grid + cx] = Math.log(topNeg + ENERGY_EPSILON);
          }
        }
      }
    }
  }
  const base = baseChannels(geometry);
  out.set(level.length === cells ? level : coarsen(level, side, grid), (base - 1) * cells);
  if (geometry.relative === true) appendRelative(out, base, cells);
  return { channels, grid, data: out };
}

function coarsen(plane: Float32Array, side: number, grid: number): Float32Array {
  let p = plane;
  let s = side;
  while (s > grid) {
    p = halve(p, s);
    s /= 2;
  }
  return p;
}

/** Writes channel c minus its mean over the cells into channel base + c (float32, as the graph). */
function appendRelative(out: Float32Array, base: number, cells: number): void {
  for (let c = 0; c < base; c++) {
    let sum = 0;
    for (let i = 0; i < cells; i++) sum += out[c * cells + i] as number;
    const mean = Math.fround(sum / cells);
    for (let i = 0; i < cells; i++)
      out[(base + c) * cells + i] = Math.fround((out[c * cells + i] as number) - mean);
  }
}
