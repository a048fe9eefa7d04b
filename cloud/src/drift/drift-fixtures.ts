import {
  MEAN_IMAGE_SIDE,
  WINDOW_BOUNDS,
  histogramOf,
  scoreBounds,
  type TelemetryWindow,
  type WindowReference,
} from '@linesight/protocol';
import type { DriftAlert } from './alert-store.ts';

/** A seeded uniform generator (mulberry32): reproducible test and benchmark data. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

/** How a simulated line looks: the distributions frames are drawn from. */
export interface LineLook {
  brightness: number;
  contrast: number;
  sharpness: number;
  /** Share of defect frames. */
  defectRate: number;
  frozen?: boolean;
  /** Added to the left quarter of the mean image (a moved camera shows the belt). */
  band?: number;
}

/** The look of the reference line. */
export const NORMAL_LOOK: LineLook = {
  brightness: 120,
  contrast: 30,
  sharpness: 6,
  defectRate: 0.1,
};

const THRESHOLD = 0.5;

interface Frame {
  brightness: number;
  contrast: number;
  sharpness: number;
  score: number;
}

function frames(look: LineLook, n: number, next: () => number): Frame[] {
  const out: Frame[] = [];
  for (let i = 0; i < n; i++) {
    const defect = next() < look.defectRate;
    out.push({
      brightness: look.brightness + 8 * gaussian(next),
      contrast: look.contrast + 3 * gaussian(next),
      sharpness: look.sharpness * Math.exp(0.2 * gaussian(next)),
      score: defect
        ? THRESHOLD * (1.2 + 0.5 * next())
        : THRESHOLD * 0.4 * (1 + 0.3 * gaussian(next)),
    });
  }
  return out;
}

function meanImage(look: LineLook): number[] {
  const side = MEAN_IMAGE_SIDE;
  return Array.from({ length: side * side }, (_, i) =>
    Math.max(0, Math.min(255, look.brightness + (i % side < side / 4 ? (look.band ?? 0) : 0))),
  );
}

/** A model's window reference drawn from `look` (as training computes it from its images). */
export function referenceOf(look: LineLook, n: number, seed: number): WindowReference {
  const f = frames({ ...look, defectRate: 0 }, n, seededRandom(seed));
  return {
    frames: n,
    score: histogramOf(
      scoreBounds(THRESHOLD),
      f.map((x) => x.score),
    ),
    scoreFrames: n,
    brightness: histogramOf(
      WINDOW_BOUNDS.brightness,
      f.map((x) => x.brightness),
    ),
    contrast: histogramOf(
      WINDOW_BOUNDS.contrast,
      f.map((x) => x.contrast),
    ),
    sharpness: histogramOf(
      WINDOW_BOUNDS.sharpness,
      f.map((x) => x.sharpness),
    ),
    defectRate: look.defectRate,
    defectRateFrames: n,
    meanImage: meanImage(look),
  };
}

/** The threshold of the fixture model. */
export const FIXTURE_THRESHOLD = THRESHOLD;

/** One telemetry window of `frameCount` frames drawn from `look`. */
export function windowOf(options: {
  seq: number;
  startMs: number;
  durationMs: number;
  frameCount: number;
  look: LineLook;
  next: () => number;
  model?: { name: string; version: string } | null;
}): TelemetryWindow {
  const { look, frameCount } = options;
  const f = frames(look, frameCount, options.next);
  const defects = f.filter((x) => x.score >= THRESHOLD).length;
  const model = options.model === undefined ? { name: 'tile', version: '1.0.0' } : options.model;
  return {
    boot: 1,
    seq: options.seq,
    start: new Date(options.startMs).toISOString(),
    end: new Date(options.startMs + options.durationMs).toISOString(),
    modelName: model?.name ?? null,
    modelVersion: model?.version ?? null,
    counts: { good: frameCount - defects, defect: defects, unknown: 0 },
    droppedFrames: 0,
    errors: 0,
    latencyMs: histogramOf(
      [5, 10, 20],
      f.map(() => 4),
    ),
    score: histogramOf(
      scoreBounds(THRESHOLD),
      f.map((x) => x.score),
    ),
    brightness: histogramOf(
      WINDOW_BOUNDS.brightness,
      f.map((x) => x.brightness),
    ),
    contrast: histogramOf(
      WINDOW_BOUNDS.contrast,
      f.map((x) => x.contrast),
    ),
    sharpness: histogramOf(
      WINDOW_BOUNDS.sharpness,
      f.map((x) => x.sharpness),
    ),
    cpuCores: 0.2,
    rssMb: 150,
    samples: 0,
    ...(frameCount > 0
      ? {
          camera: {
            frames: frameCount,
            frozenFrames: look.frozen === true ? frameCount : 0,
            darkFrames: 0,
            clippedHighShare: 0,
            clippedLowShare: 0,
            meanImage: meanImage(look),
          },
        }
      : {}),
  };
}

/** An open product-drift alert (brightness PSI 0.4 on tile@1.0.0, line-1); `over` changes fields. */
export function driftAlert(over: Partial<DriftAlert> = {}): DriftAlert {
  return {
    id: 1,
    deviceId: 'line-1',
    modelName: 'tile',
    modelVersion: '1.0.0',
    kind: 'product',
    feature: 'brightness',
    statistic: 'psi',
    state: 'open',
    level: 'alert',
    value: 0.4,
    peakValue: 0.4,
    frames: 9000,
    windowStart: '2026-01-01T00:00:00.000Z',
    windowEnd: '2026-01-01T00:15:00.000Z',
    openedAt: '2026-01-01T00:15:00.000Z',
    updatedAt: '2026-01-01T00:15:00.000Z',
    resolvedAt: null,
    ...over,
  };
}
