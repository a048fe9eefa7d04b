import { GraphBuilder, intsAttr, stringAttr } from './onnx-graph.ts';

/**
 * The map an operator sees, made from PaDiM's per-cell distances: blurred by
 * a few 3x3 binomial passes ([1 2 1] x [1 2 1] / 16, edges replicated) and
 * upsampled bilinearly (half-pixel centres, edges clamped, as ONNX Resize) to
 * the feature grid. A defect spans several neighbouring cells while a good
 * part's noisy cell stands alone, and the cells are coarse (16 px at 256 px):
 * on MTD (5 folds) the smoothed map ranks defect pixels above good ones
 * better than the raw map (see the README). The image score still reads the
 * raw map.
 */
export const PADIM_MAP_BLUR_PASSES = 2;

const BINOMIAL = [1, 2, 1];

/** One 3x3 binomial blur of a side x side plane with replicated edges (float32, as the graph). */
function blurOnce(map: Float32Array, side: number): Float32Array {
  const out = new Float32Array(map.length);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let sum = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const row = Math.min(side - 1, Math.max(0, y + dy)) * side;
        for (let dx = -1; dx <= 1; dx++) {
          const w = ((BINOMIAL[dy + 1] as number) * (BINOMIAL[dx + 1] as number)) / 16;
          sum += w * (map[row + Math.min(side - 1, Math.max(0, x + dx))] as number);
        }
      }
      out[y * side + x] = sum;
    }
  }
  return out;
}

/** Source coordinates of a bilinear resize by an integer factor: lower index, upper index, weight of the upper. */
function bilinearTaps(from: number, factor: number): { lo: number; hi: number; t: number }[] {
  return Array.from({ length: from * factor }, (_, i) => {
    const source = Math.min(from - 1, Math.max(0, (i + 0.5) / factor - 0.5));
    const lo = Math.floor(source);
    return { lo, hi: Math.min(from - 1, lo + 1), t: source - lo };
  });
}

/**
 * The displayed map: `passes` 3x3 binomial blurs of a `grid` x `grid` map,
 * then bilinear upsampling to `to` x `to` (a multiple of grid).
 */
export function smoothMap(
  map: Float32Array,
  grid: number,
  passes: number,
  to: number,
): Float32Array {
  if (to % grid !== 0) throw new RangeError(`map side ${to} is not a multiple of ${grid}`);
  let blurred = map;
  for (let p = 0; p < passes; p++) blurred = blurOnce(blurred, grid);
  const taps = bilinearTaps(grid, to / grid);
  const out = new Float32Array(to * to);
  for (let y = 0; y < to; y++) {
    const ty = taps[y] as { lo: number; hi: number; t: number };
    for (let x = 0; x < to; x++) {
      const tx = taps[x] as { lo: number; hi: number; t: number };
      const at = (row: number, col: number) => blurred[row * grid + col] as number;
      const top = (1 - tx.t) * at(ty.lo, tx.lo) + tx.t * at(ty.lo, tx.hi);
      const bottom = (1 - tx.t) * at(ty.hi, tx.lo) + tx.t * at(ty.hi, tx.hi);
      out[y * to + x] = (1 - ty.t) * top + ty.t * bottom;
    }
  }
  return out;
}

/** Appends smoothMap to a graph: [1, 1, grid, grid] -> [1, 1, to, to] named `name`. */
export function smoothMapGraph(
  g: GraphBuilder,
  map: string,
  grid: number,
  passes: number,
  to: number,
  name: string,
): string {
  if (to % grid !== 0) throw new RangeError(`map side ${to} is not a multiple of ${grid}`);
  let x = map;
  if (passes > 0) {
    const kernel = new Float32Array(9);
    for (let i = 0; i < 9; i++)
      kernel[i] = ((BINOMIAL[Math.floor(i / 3)] as number) * (BINOMIAL[i % 3] as number)) / 16;
    const weights = g.weight('map_blur_kernel', [1, 1, 3, 3], kernel);
    const pads = g.int64s('map_blur_pads', [8], [0, 0, 1, 1, 0, 0, 1, 1]);
    for (let p = 0; p < passes; p++) {
      const padded = g.op('Pad', [x, pads], [stringAttr('mode', 'edge')], `map_blur_padded_${p}`);
      x = g.op('Conv', [padded, weights], [intsAttr('kernel_shape', [3, 3])], `map_blur_${p}`);
    }
  }
  const factor = to / grid;
  if (factor === 1) return g.op('Identity', [x], [], name);
  // Opset 13 Resize: the roi input is omitted (empty name); scales on H and W only.
  return g.op(
    'Resize',
    [x, '', g.weight('map_upsample_scales', [4], Float32Array.of(1, 1, factor, factor))],
    [stringAttr('mode', 'linear'), stringAttr('coordinate_transformation_mode', 'half_pixel')],
    name,
  );
}
