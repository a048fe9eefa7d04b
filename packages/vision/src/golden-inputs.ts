import type { InputSpec } from '@linesight/protocol';

/** How many standard golden inputs there are. */
export const GOLDEN_INPUT_COUNT = 4;

/**
 * The standard golden inputs of an input spec, already normalized: the mean
 * image, a brighter flat image, deterministic noise and a diagonal gradient.
 * The cloud records a model's scores on them in its signed manifest; a device
 * reproduces them before a version goes live, which catches a corrupted or
 * incompatible model or runtime without shipping any images.
 */
export function goldenInputs(spec: InputSpec): Float32Array[] {
  const { channels, height, width } = spec;
  const n = channels * height * width;
  const flat = (value: number) => new Float32Array(n).fill(value);
  const noise = new Float32Array(n);
  let state = 0x2545f491;
  for (let i = 0; i < n; i++) {
    // xorshift32: the same sequence on every platform.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    noise[i] = ((state >>> 0) / 0x100000000) * 2 - 1;
  }
  const gradient = new Float32Array(n);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++)
        gradient[(c * height + y) * width + x] = ((x + y) / (width + height - 2)) * 2 - 1;
    }
  }
  return [flat(0), flat(1), noise, gradient];
}

/** True when `score` matches `reference` within a relative tolerance (absolute below 1). */
export function withinGoldenTolerance(
  score: number,
  reference: number,
  tolerance: number,
): boolean {
  return Math.abs(score - reference) <= tolerance * Math.max(1, Math.abs(reference));
}
