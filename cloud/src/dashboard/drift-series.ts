import type { TelemetryWindow, WindowReference } from '@linesight/protocol';
import { evaluateProduct, type DriftLevel } from '../drift/drift-evaluate.ts';
import type { DriftSettings } from '../drift/drift-settings.ts';

/** A model version's reference as the drift job uses it. */
export interface SeriesReference {
  threshold: number;
  window: WindowReference | undefined;
}

/** One judged statistic at one point. */
export interface SeriesValue {
  value: number;
  level: DriftLevel;
  pValue: number | null;
  frames: number;
}

/** What the drift job would have found at `at`: product statistics by `feature/statistic`. */
export interface SeriesPoint {
  at: string;
  model: { name: string; version: string } | null;
  values: Record<string, SeriesValue>;
  /** Why features were not judged at this point. */
  skipped: string[];
}

/** A device's product drift over time. */
export interface DriftSeries {
  deviceId: string;
  lookbackSec: number;
  minFrames: number;
  alpha: number;
  levels: {
    psi: { warning: number; alert: number };
    ks: { warning: number; alert: number };
    shift: { warning: number; alert: number };
    /** Camera health shares (frozen, dark frames; clipped pixels) alerts open at. */
    camera: {
      frozenShare: { warning: number; alert: number };
      darkShare: { warning: number; alert: number };
      clippedShare: { warning: number; alert: number };
    };
  };
  /** Windows read; `truncated` when the range held more than the cap (the oldest are kept out). */
  windows: number;
  truncated: boolean;
  points: SeriesPoint[];
}

/** Options of one series. */
export interface DriftSeriesOptions {
  deviceId: string;
  /** The device's windows that ended in the range and the lookback before it, any order. */
  windows: readonly TelemetryWindow[];
  truncated: boolean;
  reference: (name: string, version: string) => SeriesReference | undefined;
  settings: DriftSettings;
  /** At most this many points (evenly spread window ends, the newest always among them). */
  maxPoints: number;
  /** Only window ends at or after this make points (the earlier windows are lookback). */
  fromMs: number;
}

/**
 * PSI, KS and the defect-rate shift of one device over time, each point
 * computed exactly as the drift job would have at the end of a window: the
 * windows of the lookback before it that ran the model of the newest one,
 * against that model version's reference, with the job's settings (so the
 * levels, alpha and minimum frames are the ones alerts open on).
 */
export function driftSeries(o: DriftSeriesOptions): DriftSeries {
  const s = o.settings;
  const sorted = [...o.windows].sort((a, b) => Date.parse(a.end) - Date.parse(b.end));
  const ends = sorted.map((w) => Date.parse(w.end));
  const candidates: number[] = [];
  for (let i = 0; i < sorted.length; i++) {
    // One point per distinct end time: windows ending together are judged together.
    if ((ends[i] as number) >= o.fromMs && ends[i] !== ends[i + 1]) candidates.push(i);
  }
  const picks = spread(candidates, o.maxPoints);
  const lookbackMs = s.lookbackSec * 1000;
  const points: SeriesPoint[] = [];
  let first = 0;
  for (const last of picks) {
    const endMs = ends[last] as number;
    // The job reads windows that ended in [now - lookback, now]; here now is this window's end.
    while (first <= last && (ends[first] as number) < endMs - lookbackMs) first++;
    const span = sorted.slice(first, last + 1);
    const newest = sorted[last] as TelemetryWindow;
    const point: SeriesPoint = {
      at: newest.end,
      model:
        newest.modelName === null || newest.modelVersion === null
          ? null
          : { name: newest.modelName, version: newest.modelVersion },
      values: {},
      skipped: [],
    };
    points.push(point);
    if (point.model === null) {
      point.skipped.push('the device ran no model');
      continue;
    }
    const ref = o.reference(point.model.name, point.model.version);
    if (ref === undefined) {
      point.skipped.push(`${point.model.name}@${point.model.version}: not in the registry`);
      continue;
    }
    const current = span.filter(
      (w) => w.modelName === newest.modelName && w.modelVersion === newest.modelVersion,
    );
    const result = evaluateProduct(current, ref.window, ref.threshold, s);
    point.skipped.push(...result.skipped);
    for (const f of result.findings)
      point.values[`${f.feature}/${f.statistic}`] = {
        value: f.value,
        level: f.level,
        pValue: f.pValue ?? null,
        frames: f.frames,
      };
  }
  return {
    deviceId: o.deviceId,
    lookbackSec: s.lookbackSec,
    minFrames: s.minFrames,
    alpha: s.alpha,
    levels: {
      psi: s.psi,
      ks: s.ks,
      shift: s.defectRateShift,
      camera: {
        frozenShare: s.camera.frozenShare,
        darkShare: s.camera.darkShare,
        clippedShare: s.camera.clippedShare,
      },
    },
    windows: sorted.length,
    truncated: o.truncated,
    points,
  };
}

/** At most `max` of `items`, evenly spread, the last always kept. */
function spread<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const out: T[] = [];
  const step = (items.length - 1) / Math.max(1, max - 1);
  for (let k = 0; k < max; k++) out.push(items[Math.round(k * step)] as T);
  return out;
}
