import { Type, type Static } from '@sinclair/typebox';

/**
 * Bin bounds shared by device telemetry windows and model reference profiles,
 * so the cloud compares a device window with a model's reference bin for bin.
 * A histogram over `le` has `le.length + 1` counts: `counts[i]` counts values
 * <= `le[i]` (and above the previous bound); the last count is the overflow.
 */
export const WINDOW_BOUNDS = {
  brightness: linearBounds(0, 255, 16),
  contrast: linearBounds(0, 128, 16),
  sharpness: exponentialBounds(0.5, 2, 10),
} as const;

/** Score bounds of a model with this threshold: 20 equal bins from 0 to twice the threshold. */
export function scoreBounds(threshold: number): number[] {
  return linearBounds(0, 2 * threshold, 20);
}

/** Side of the mean-image grid a device keeps per window (moved-camera check). */
export const MEAN_IMAGE_SIDE = 8;

/** `count` bounds from `from` to `to`, evenly spaced (the first above `from`). */
export function linearBounds(from: number, to: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => round6(from + ((to - from) * (i + 1)) / count));
}

/** `count` bounds growing by `factor` from `first` (latency-style). */
export function exponentialBounds(first: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => round6(first * factor ** i));
}

/** The bin of `value` over upper bounds `le` (length `le.length + 1` histogram). */
export function binOf(le: readonly number[], value: number): number {
  let i = 0;
  while (i < le.length && value > (le[i] as number)) i++;
  return i;
}

/** Counts finite values into a histogram over upper bounds `le`. */
export function histogramOf(
  le: readonly number[],
  values: Iterable<number>,
): { le: number[]; counts: number[] } {
  const counts = new Array<number>(le.length + 1).fill(0);
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    const bin = binOf(le, v);
    counts[bin] = (counts[bin] as number) + 1;
  }
  return { le: [...le], counts };
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

const Count = Type.Integer({ minimum: 0 });
const Share = Type.Number({ minimum: 0, maximum: 1 });

/** A histogram over fixed upper bounds (as in telemetry windows). */
const BoundedHistogramSchema = Type.Object(
  {
    le: Type.Array(Type.Number(), { maxItems: 64 }),
    counts: Type.Array(Count, { maxItems: 65 }),
  },
  { additionalProperties: false },
);

/**
 * Camera health of one telemetry window, computed on the device from the
 * tensor it already has: frames inspected, frames identical to the one before
 * (frozen), frames too dark to show anything, the mean share of clipped
 * pixels, and the mean image on a small grid (moved camera).
 */
export const CameraHealthSchema = Type.Object(
  {
    frames: Count,
    frozenFrames: Type.Integer({
      minimum: 0,
      description: 'frames whose downscaled image equals the previous frame exactly',
    }),
    darkFrames: Type.Integer({ minimum: 0, description: 'frames with mean grey below 8 of 255' }),
    clippedHighShare: { ...Share, description: 'mean share of pixels at or above 250 of 255' },
    clippedLowShare: { ...Share, description: 'mean share of pixels at or below 5 of 255' },
    meanImage: Type.Optional(
      Type.Array(Type.Number({ minimum: 0, maximum: 255 }), {
        minItems: 1,
        maxItems: 256,
        description: 'mean grey per cell of a MEAN_IMAGE_SIDE x MEAN_IMAGE_SIDE grid, row major',
      }),
    ),
  },
  { additionalProperties: false },
);
/** Camera health of a window. */
export type CameraHealth = Static<typeof CameraHealthSchema>;

/**
 * What a model expects a device window to look like: histograms over the
 * same bounds devices use (score over `scoreBounds(threshold)`), the expected
 * defect rate, and the mean image. Stored in the model contract as
 * `referenceProfile.window`; older models have none and are not judged.
 */
export const WindowReferenceSchema = Type.Object(
  {
    frames: Type.Integer({ minimum: 0, description: 'images the image histograms come from' }),
    score: Type.Optional(BoundedHistogramSchema),
    scoreFrames: Type.Optional(Count),
    brightness: Type.Optional(BoundedHistogramSchema),
    contrast: Type.Optional(BoundedHistogramSchema),
    sharpness: Type.Optional(BoundedHistogramSchema),
    defectRate: Type.Optional(Share),
    defectRateFrames: Type.Optional(Count),
    meanImage: Type.Optional(Type.Array(Type.Number(), { minItems: 1, maxItems: 256 })),
  },
  { additionalProperties: true },
);
/** A model's window reference profile. */
export type WindowReference = Static<typeof WindowReferenceSchema>;
