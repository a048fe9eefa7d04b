import type { InputSpec } from '@linesight/protocol';

/** Cheap per-frame image statistics on the 0-255 scale, for telemetry histograms. */
export interface FrameImageStats {
  /** Mean grey level. */
  brightness: number;
  /** Standard deviation of grey levels (RMS contrast). */
  contrast: number;
  /** Mean absolute Laplacian of the grey image (higher = sharper). */
  sharpness: number;
}

/**
 * Brightness, contrast and sharpness of a preprocessed NCHW tensor, undoing
 * the spec's normalization, on every second pixel in each direction (a
 * 192x192 input costs about 0.1 ms).
 */
export function frameImageStats(
  tensor: Float32Array,
  spec: InputSpec,
  stride = 2,
): FrameImageStats {
  const { width, height, channels } = spec;
  const plane = width * height;
  const grey = (x: number, y: number): number => {
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const v = tensor[c * plane + y * width + x] as number;
      sum +=
        (v * (spec.std[c] ?? spec.std[0] ?? 1) + (spec.mean[c] ?? spec.mean[0] ?? 0)) / spec.scale;
    }
    return sum / channels;
  };
  let n = 0;
  let sum = 0;
  let sumSquares = 0;
  let laplacian = 0;
  let m = 0;
  for (let y = 1; y < height - 1; y += stride) {
    for (let x = 1; x < width - 1; x += stride) {
      const g = grey(x, y);
      sum += g;
      sumSquares += g * g;
      n++;
      laplacian += Math.abs(
        4 * g - grey(x - 1, y) - grey(x + 1, y) - grey(x, y - 1) - grey(x, y + 1),
      );
      m++;
    }
  }
  if (n === 0) return { brightness: 0, contrast: 0, sharpness: 0 };
  const brightness = sum / n;
  return {
    brightness,
    contrast: Math.sqrt(Math.max(0, sumSquares / n - brightness * brightness)),
    sharpness: laplacian / Math.max(1, m),
  };
}
