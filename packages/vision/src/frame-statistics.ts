import { MEAN_IMAGE_SIDE, type InputSpec } from '@linesight/protocol';

/** Cheap per-frame image statistics on the 0-255 scale, for telemetry and reference profiles. */
export interface FrameImageStats {
  /** Mean grey level. */
  brightness: number;
  /** Standard deviation of grey levels (RMS contrast). */
  contrast: number;
  /** Mean absolute Laplacian of the grey image (higher = sharper). */
  sharpness: number;
  /** Share of sampled pixels at or above 250. */
  clippedHigh: number;
  /** Share of sampled pixels at or below 5. */
  clippedLow: number;
  /**
   * Mean grey per cell of a MEAN_IMAGE_SIDE x MEAN_IMAGE_SIDE grid, row major:
   * the mean image of a window (moved camera) and, with the values above, the
   * fingerprint that tells a frozen camera (identical consecutive frames).
   */
  grid: Float32Array;
}

const CLIP_HIGH = 250;
const CLIP_LOW = 5;

/**
 * Statistics of a preprocessed NCHW tensor, undoing the spec's
 * normalization, on every second pixel in each direction (a 192x192 input
 * costs about 0.1 ms), so the frame path pays no second decode.
 */
export function frameImageStats(
  tensor: Float32Array,
  spec: InputSpec,
  stride = 2,
): FrameImageStats {
  const { width, height, channels } = spec;
  const plane = width * height;
  // pixel = v * std / scale + mean / scale per channel, averaged over channels.
  const gain = Array.from(
    { length: channels },
    (_, c) => (spec.std[c] ?? spec.std[0] ?? 1) / spec.scale / channels,
  );
  const offset = Array.from(
    { length: channels },
    (_, c) => (spec.mean[c] ?? spec.mean[0] ?? 0) / spec.scale / channels,
  ).reduce((a, b) => a + b, 0);
  const g0 = gain[0] as number;
  const grey =
    channels === 1
      ? (i: number): number => (tensor[i] as number) * g0 + offset
      : (i: number): number => {
          let sum = offset;
          for (let c = 0; c < channels; c++)
            sum += (tensor[c * plane + i] as number) * (gain[c] as number);
          return sum;
        };
  const side = MEAN_IMAGE_SIDE;
  const gridSum = new Float64Array(side * side);
  const gridCount = new Uint32Array(side * side);
  const cellOfX = new Uint8Array(width);
  for (let x = 0; x < width; x++) cellOfX[x] = Math.min(side - 1, Math.floor((x * side) / width));
  let n = 0;
  let sum = 0;
  let sumSquares = 0;
  let laplacian = 0;
  let high = 0;
  let low = 0;
  for (let y = 1; y < height - 1; y += stride) {
    const row = Math.min(side - 1, Math.floor((y * side) / height)) * side;
    for (let x = 1; x < width - 1; x += stride) {
      const i = y * width + x;
      const g = grey(i);
      sum += g;
      sumSquares += g * g;
      n++;
      if (g >= CLIP_HIGH) high++;
      else if (g <= CLIP_LOW) low++;
      const cell = row + (cellOfX[x] as number);
      gridSum[cell] = (gridSum[cell] as number) + g;
      gridCount[cell] = (gridCount[cell] as number) + 1;
      laplacian += Math.abs(4 * g - grey(i - 1) - grey(i + 1) - grey(i - width) - grey(i + width));
    }
  }
  const grid = new Float32Array(side * side);
  if (n === 0)
    return { brightness: 0, contrast: 0, sharpness: 0, clippedHigh: 0, clippedLow: 0, grid };
  const brightness = sum / n;
  for (let i = 0; i < grid.length; i++) {
    const count = gridCount[i] as number;
    grid[i] = count > 0 ? (gridSum[i] as number) / count : brightness;
  }
  return {
    brightness,
    contrast: Math.sqrt(Math.max(0, sumSquares / n - brightness * brightness)),
    sharpness: laplacian / n,
    clippedHigh: high / n,
    clippedLow: low / n,
    grid,
  };
}
