import type { InputSpec } from '@linesight/protocol';

/** Simple per-image statistics for drift checks, on the 0-255 pixel scale. */
export interface ImageStatistics {
  /** Mean pixel value over all channels. */
  meanIntensity: number;
  /** Standard deviation of pixel values over all channels (RMS contrast). */
  contrast: number;
}

/**
 * Mean intensity and contrast of a preprocessed NCHW input, undoing the
 * spec's normalization, so an agent gets them from the tensor it already has.
 */
export function tensorStatistics(tensor: Float32Array, spec: InputSpec): ImageStatistics {
  const plane = spec.width * spec.height;
  let sum = 0;
  let sumSquares = 0;
  for (let c = 0; c < spec.channels; c++) {
    const std = spec.std[c] ?? 1;
    const mean = spec.mean[c] ?? 0;
    for (let i = c * plane; i < (c + 1) * plane; i++) {
      const pixel = ((tensor[i] as number) * std + mean) / spec.scale;
      sum += pixel;
      sumSquares += pixel * pixel;
    }
  }
  const n = plane * spec.channels;
  const meanIntensity = sum / n;
  return {
    meanIntensity,
    contrast: Math.sqrt(Math.max(0, sumSquares / n - meanIntensity * meanIntensity)),
  };
}
