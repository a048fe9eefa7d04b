import type { Histogram, TelemetryWindow, WindowReference } from '@linesight/protocol';
import type { DriftLevels, DriftSettings } from './drift-settings.ts';
import {
  addCounts,
  binnedMedian,
  rateShiftTest,
  ks,
  psi,
  sameBounds,
  type BinnedComparison,
} from './drift-statistics.ts';

/** Product drift (what the line makes looks different) or camera health (how it is seen). */
export type AlertKind = 'product' | 'camera';
/** How far a statistic is from normal. */
export type DriftLevel = 'ok' | 'warning' | 'alert';

/** One judged statistic of one feature. */
export interface DriftFinding {
  kind: AlertKind;
  feature: string;
  statistic: string;
  value: number;
  level: DriftLevel;
  /** Live frames behind the value. */
  frames: number;
  pValue?: number;
  windowStartMs: number;
  windowEndMs: number;
}

/** What one device's evaluation found, and what it could not judge and why. */
export interface DeviceEvaluation {
  findings: DriftFinding[];
  skipped: string[];
}

/** The image features compared with a reference histogram. */
const IMAGE_FEATURES = ['brightness', 'contrast', 'sharpness'] as const;

/** Level of `value`, counting only when significant (p below alpha). */
export function levelOf(value: number, levels: DriftLevels, significant = true): DriftLevel {
  if (!significant) return 'ok';
  if (value >= levels.alert) return 'alert';
  if (value >= levels.warning) return 'warning';
  return 'ok';
}

interface Span {
  startMs: number;
  endMs: number;
}

function spanOf(windows: readonly TelemetryWindow[]): Span {
  return {
    startMs: Math.min(...windows.map((w) => Date.parse(w.start))),
    endMs: Math.max(...windows.map((w) => Date.parse(w.end))),
  };
}

/** Sums the histograms of `pick` over windows whose bounds equal `le`. */
function sumHistograms(
  windows: readonly TelemetryWindow[],
  pick: (w: TelemetryWindow) => Histogram,
  le: readonly number[],
): number[] {
  const counts = new Array<number>(le.length + 1).fill(0);
  for (const w of windows) {
    const h = pick(w);
    if (sameBounds(h.le, le)) addCounts(counts, h.counts);
  }
  return counts;
}

function sum(counts: readonly number[]): number {
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * Product drift of one device against its model's reference, over the
 * windows of the lookback that ran that model: PSI and KS per feature (the
 * score below the threshold only, so the defect share does not count twice)
 * and the defect-rate shift with a binomial test. Features without a
 * reference, or with too few frames, are skipped and listed.
 */
export function evaluateProduct(
  windows: readonly TelemetryWindow[],
  reference: WindowReference | undefined,
  threshold: number | undefined,
  settings: DriftSettings,
): DeviceEvaluation {
  const findings: DriftFinding[] = [];
  const skipped: string[] = [];
  if (windows.length === 0) return { findings, skipped };
  if (reference === undefined) {
    skipped.push('product: the model has no window reference profile (trained before it)');
    return { findings, skipped };
  }
  const span = spanOf(windows);
  const compare = (
    feature: string,
    ref: readonly number[],
    live: readonly number[],
    refFrames: number,
  ): void => {
    const frames = sum(live);
    if (refFrames < settings.minReferenceFrames) {
      skipped.push(
        `${feature}: reference has ${refFrames} frames, needs ${settings.minReferenceFrames}`,
      );
      return;
    }
    if (frames < settings.minFrames) {
      skipped.push(`${feature}: ${frames} frames in the lookback, needs ${settings.minFrames}`);
      return;
    }
    const add = (statistic: string, r: BinnedComparison, levels: DriftLevels): void => {
      findings.push({
        kind: 'product',
        feature,
        statistic,
        value: round6(r.value),
        pValue: r.pValue,
        level: levelOf(r.value, levels, r.pValue < settings.alpha),
        frames,
        windowStartMs: span.startMs,
        windowEndMs: span.endMs,
      });
    };
    add('psi', psi(ref, live), settings.psi);
    add('ks', ks(ref, live), settings.ks);
  };

  for (const feature of IMAGE_FEATURES) {
    const ref = reference[feature];
    if (ref === undefined) {
      skipped.push(`${feature}: no reference histogram`);
      continue;
    }
    compare(
      feature,
      ref.counts,
      sumHistograms(windows, (w) => w[feature], ref.le),
      reference.frames,
    );
  }

  const refScore = reference.score;
  if (refScore === undefined || threshold === undefined) {
    skipped.push('score: no reference histogram');
  } else {
    // Bins up to the threshold: the good side of the score distribution.
    const below = refScore.le.findIndex((b) => b >= threshold - 1e-9) + 1;
    const live = sumHistograms(windows, (w) => w.score, refScore.le);
    if (below <= 0 || sum(live) === 0) skipped.push('score: windows use other score bounds');
    else
      compare(
        'score',
        refScore.counts.slice(0, below),
        live.slice(0, below),
        sum(refScore.counts.slice(0, below)),
      );
  }

  if (reference.defectRate === undefined) {
    skipped.push('defectRate: no expected defect rate');
  } else {
    let k = 0;
    let n = 0;
    for (const w of windows) {
      k += w.counts.defect;
      n += w.counts.defect + w.counts.good;
    }
    if (n < settings.minFrames) {
      skipped.push(`defectRate: ${n} frames in the lookback, needs ${settings.minFrames}`);
    } else {
      const t = rateShiftTest(k, n, reference.defectRate, reference.defectRateFrames ?? 0);
      findings.push({
        kind: 'product',
        feature: 'defectRate',
        statistic: 'shift',
        value: round6(Math.abs(t.shift)),
        pValue: t.pValue,
        level: levelOf(Math.abs(t.shift), settings.defectRateShift, t.pValue < settings.alpha),
        frames: n,
        windowStartMs: span.startMs,
        windowEndMs: span.endMs,
      });
    }
  }
  return { findings, skipped };
}

/**
 * Camera health of one device over its newest windows (newest last): those
 * that together hold `camera.minFrames` frames, so a broken camera shows
 * within a few windows however long the product lookback is. Frozen, dark
 * and clipped frames need no reference; blur compares the median sharpness
 * with the reference's; a moved camera compares the mean image (each image's
 * own mean removed, so a lighting change alone does not count) with the
 * reference's or, for models without one, the device's first judged window.
 */
export function evaluateCamera(
  windowsOldestFirst: readonly TelemetryWindow[],
  reference: WindowReference | undefined,
  baselineImage: readonly number[] | undefined,
  settings: DriftSettings,
): DeviceEvaluation & { meanImage?: number[] } {
  const c = settings.camera;
  const findings: DriftFinding[] = [];
  const skipped: string[] = [];
  if (windowsOldestFirst.length === 0) return { findings, skipped };

  // A camera that delivers nothing: the newest windows in a row without a frame.
  let empty = 0;
  for (let i = windowsOldestFirst.length - 1; i >= 0; i--) {
    const w = windowsOldestFirst[i] as TelemetryWindow;
    if (w.counts.good + w.counts.defect + w.counts.unknown > 0 || (w.camera?.frames ?? 0) > 0)
      break;
    empty++;
  }
  const newest = windowsOldestFirst[windowsOldestFirst.length - 1] as TelemetryWindow;
  if (empty > 0) {
    const emptyWindows = windowsOldestFirst.slice(windowsOldestFirst.length - empty);
    const span = spanOf(emptyWindows);
    findings.push({
      kind: 'camera',
      feature: 'missing',
      statistic: 'emptyWindows',
      value: empty,
      level: empty >= c.missingWindows ? 'alert' : 'ok',
      frames: 0,
      windowStartMs: span.startMs,
      windowEndMs: span.endMs,
    });
    return { findings, skipped };
  }
  findings.push({
    kind: 'camera',
    feature: 'missing',
    statistic: 'emptyWindows',
    value: 0,
    level: 'ok',
    frames: newest.camera?.frames ?? 0,
    windowStartMs: Date.parse(newest.start),
    windowEndMs: Date.parse(newest.end),
  });

  const recent: TelemetryWindow[] = [];
  let frames = 0;
  for (let i = windowsOldestFirst.length - 1; i >= 0 && frames < c.minFrames; i--) {
    const w = windowsOldestFirst[i] as TelemetryWindow;
    if (w.camera === undefined) continue;
    recent.push(w);
    frames += w.camera.frames;
  }
  if (frames < c.minFrames) {
    skipped.push(
      recent.length === 0
        ? 'camera: windows carry no camera health (agent predates it)'
        : `camera: ${frames} frames in the newest windows, needs ${c.minFrames}`,
    );
    return { findings, skipped };
  }
  const span = spanOf(recent);
  const add = (feature: string, statistic: string, value: number, levels: DriftLevels): void => {
    findings.push({
      kind: 'camera',
      feature,
      statistic,
      value: round6(value),
      level: levelOf(value, levels),
      frames,
      windowStartMs: span.startMs,
      windowEndMs: span.endMs,
    });
  };
  let frozen = 0;
  let dark = 0;
  let clipped = 0;
  const side = recent[0]?.camera?.meanImage?.length ?? 0;
  const meanImage = new Array<number>(side).fill(0);
  let imageFrames = 0;
  for (const w of recent) {
    const h = w.camera;
    if (h === undefined) continue;
    frozen += h.frozenFrames;
    dark += h.darkFrames;
    clipped += (h.clippedHighShare + h.clippedLowShare) * h.frames;
    if (h.meanImage !== undefined && h.meanImage.length === side) {
      for (let i = 0; i < side; i++)
        meanImage[i] = (meanImage[i] as number) + (h.meanImage[i] as number) * h.frames;
      imageFrames += h.frames;
    }
  }
  add('frozen', 'share', frozen / frames, c.frozenShare);
  add('dark', 'share', dark / frames, c.darkShare);
  add('clipped', 'share', clipped / frames, c.clippedShare);

  const refSharpness = reference?.sharpness;
  if (refSharpness === undefined || reference === undefined) {
    skipped.push('blur: no reference sharpness');
  } else if (reference.frames < settings.minReferenceFrames) {
    skipped.push(`blur: reference has ${reference.frames} frames`);
  } else {
    const refMedian = binnedMedian(refSharpness.le, refSharpness.counts);
    const live = sumHistograms(recent, (w) => w.sharpness, refSharpness.le);
    const liveMedian = binnedMedian(refSharpness.le, live);
    if (refMedian === undefined || liveMedian === undefined || refMedian <= 0)
      skipped.push('blur: no sharpness in the windows or the reference');
    else add('blur', 'sharpnessDrop', Math.max(0, 1 - liveMedian / refMedian), c.sharpnessDrop);
  }

  let image: number[] | undefined;
  if (imageFrames > 0) {
    image = meanImage.map((v) => v / imageFrames);
    const baseline = reference?.meanImage?.length === side ? reference.meanImage : baselineImage;
    if (baseline === undefined || baseline.length !== side)
      skipped.push('moved: no reference mean image yet (this window becomes the baseline)');
    else add('moved', 'rmsGrey', centredRms(image, baseline), c.movedGrey);
  } else {
    skipped.push('moved: windows carry no mean image');
  }
  return { findings, skipped, ...(image !== undefined ? { meanImage: image } : {}) };
}

/** RMS difference of two images after removing each one's own mean. */
export function centredRms(a: readonly number[], b: readonly number[]): number {
  const mean = (x: readonly number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  const ma = mean(a);
  const mb = mean(b);
  let sq = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - ma - ((b[i] as number) - mb);
    sq += d * d;
  }
  return Math.sqrt(sq / a.length);
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
