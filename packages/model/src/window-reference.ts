import {
  WINDOW_BOUNDS,
  histogramOf,
  scoreBounds,
  type InputSpec,
  type WindowReference,
} from '@linesight/protocol';
import { frameImageStats } from '@linesight/vision';

/** What the window reference is computed from. */
export interface WindowReferenceInput {
  /** Preprocessed tensors of every image of the dataset the model saw (train and validation). */
  tensors: Iterable<Float32Array>;
  inputSpec: InputSpec;
  threshold: number;
  /** Scores of the held-out good images. */
  goodScores: readonly number[];
  /** Scores of every held-out image (good and defect). */
  validationScores: readonly number[];
}

/**
 * The model's reference for drift checks, over the same bounds devices use
 * for their telemetry windows: image statistics as `frameImageStats` computes
 * them on a device, the held-out good scores, the expected defect rate (the
 * share of held-out images scored at or above the threshold) and the mean image.
 */
export function windowReference(input: WindowReferenceInput): WindowReference {
  const brightness: number[] = [];
  const contrast: number[] = [];
  const sharpness: number[] = [];
  let grid: Float64Array | undefined;
  for (const tensor of input.tensors) {
    const s = frameImageStats(tensor, input.inputSpec);
    brightness.push(s.brightness);
    contrast.push(s.contrast);
    sharpness.push(s.sharpness);
    grid ??= new Float64Array(s.grid.length);
    for (let i = 0; i < grid.length; i++) grid[i] = (grid[i] as number) + (s.grid[i] as number);
  }
  const frames = brightness.length;
  const defects = input.validationScores.filter((s) => s >= input.threshold).length;
  const total = input.validationScores.length;
  return {
    frames,
    score: histogramOf(scoreBounds(input.threshold), input.goodScores),
    scoreFrames: input.goodScores.length,
    brightness: histogramOf(WINDOW_BOUNDS.brightness, brightness),
    contrast: histogramOf(WINDOW_BOUNDS.contrast, contrast),
    sharpness: histogramOf(WINDOW_BOUNDS.sharpness, sharpness),
    ...(total > 0 ? { defectRate: round6(defects / total), defectRateFrames: total } : {}),
    ...(grid !== undefined && frames > 0
      ? { meanImage: Array.from(grid, (v) => Math.round((v / frames) * 100) / 100) }
      : {}),
  };
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
