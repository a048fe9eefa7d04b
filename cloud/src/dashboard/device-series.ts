import type { Histogram, TelemetryWindow } from '@linesight/protocol';

/** One time bucket of a device's stored telemetry windows. */
export interface DeviceSeriesPoint {
  /** The bucket's end (ISO); the bucket holds windows that ended in (at - bucketSec, at]. */
  at: string;
  windows: number;
  /** Frames captured (good + defect + unknown). */
  frames: number;
  /** Frames per second over the time the windows cover (null: they cover none). */
  fps: number | null;
  /** Inference latency quantiles from the merged window histograms (null: no frame). */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Defect verdicts per scored (good or defect) frame; null without one. */
  defectRate: number | null;
  /** Unknown verdicts per captured frame; null without one. */
  unknownRate: number | null;
  errors: number;
  droppedFrames: number;
  /** Camera health, by frame (null when the windows carry none). */
  camera: {
    frames: number;
    frozenShare: number;
    darkShare: number;
    /** Mean share of over- or under-exposed pixels. */
    clippedShare: number;
  } | null;
}

/** A model version the device ran, from its first to its last stored window in the range. */
export interface VersionSpan {
  name: string | null;
  version: string | null;
  from: string;
  to: string;
  windows: number;
  frames: number;
}

/** A device's stored telemetry over a time range, in buckets. */
export interface DeviceSeries {
  deviceId: string;
  from: string;
  to: string;
  bucketSec: number;
  /** Windows read; `truncated` when the range held more than the cap (the oldest were left out). */
  windows: number;
  truncated: boolean;
  /** Buckets with at least one window, oldest first. */
  points: DeviceSeriesPoint[];
  /** Model versions in the order the device ran them (a version run twice shows twice). */
  versions: VersionSpan[];
}

/** Options of one series. */
export interface DeviceSeriesOptions {
  deviceId: string;
  /** The device's windows that ended in [fromMs, toMs), any order. */
  windows: readonly TelemetryWindow[];
  fromMs: number;
  toMs: number;
  truncated: boolean;
  /** At most this many buckets. */
  maxPoints: number;
}

/** Seconds of a nice bucket length at least `minSec` long. */
const NICE_SEC = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];

function bucketSecFor(rangeMs: number, maxPoints: number): number {
  const minSec = rangeMs / 1000 / Math.max(1, maxPoints);
  return NICE_SEC.find((s) => s >= minSec) ?? Math.ceil(minSec / 86_400) * 86_400;
}

/**
 * Buckets a device's telemetry windows in time: throughput, latency
 * quantiles, defect and unknown rates, errors and camera health per bucket,
 * and the spans of the model versions it ran (from what the cloud stored,
 * so charts cover the past, not only the time a page was open).
 */
export function deviceSeries(o: DeviceSeriesOptions): DeviceSeries {
  const sorted = [...o.windows].sort((a, b) => Date.parse(a.end) - Date.parse(b.end));
  // Buckets fit the span the windows cover, not the range asked for: a device that has run
  // for a minute of a 24-hour range still gets a point per window, not one 15-minute dot.
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const dataSpanMs =
    first === undefined || last === undefined ? 0 : Date.parse(last.end) - Date.parse(first.start);
  const bucketSec = bucketSecFor(Math.min(o.toMs - o.fromMs, dataSpanMs), o.maxPoints);
  const bucketMs = bucketSec * 1000;
  const groups = new Map<number, TelemetryWindow[]>();
  for (const w of sorted) {
    // Aligned to the epoch, so the same window lands in the same bucket on every read.
    const key = Math.ceil(Date.parse(w.end) / bucketMs) * bucketMs;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = []));
    group.push(w);
  }
  const points = [...groups].map(([endMs, ws]) => pointOf(endMs, ws));
  return {
    deviceId: o.deviceId,
    from: new Date(o.fromMs).toISOString(),
    to: new Date(o.toMs).toISOString(),
    bucketSec,
    windows: sorted.length,
    truncated: o.truncated,
    points,
    versions: versionSpans(sorted),
  };
}

function pointOf(endMs: number, ws: readonly TelemetryWindow[]): DeviceSeriesPoint {
  let good = 0;
  let defect = 0;
  let unknown = 0;
  let errors = 0;
  let dropped = 0;
  let coveredMs = 0;
  let camFrames = 0;
  let frozen = 0;
  let dark = 0;
  let clipped = 0;
  let withCamera = false;
  for (const w of ws) {
    good += w.counts.good;
    defect += w.counts.defect;
    unknown += w.counts.unknown;
    errors += w.errors;
    dropped += w.droppedFrames;
    coveredMs += Math.max(0, Date.parse(w.end) - Date.parse(w.start));
    const c = w.camera;
    if (c !== undefined) {
      withCamera = true;
      camFrames += c.frames;
      frozen += c.frozenFrames;
      dark += c.darkFrames;
      clipped += (c.clippedHighShare + c.clippedLowShare) * c.frames;
    }
  }
  const frames = good + defect + unknown;
  const latency = mergeHistograms(ws.map((w) => w.latencyMs));
  return {
    at: new Date(endMs).toISOString(),
    windows: ws.length,
    frames,
    fps: coveredMs > 0 ? round(frames / (coveredMs / 1000), 3) : null,
    p50Ms: latency === undefined ? null : histogramQuantile(latency, 0.5),
    p99Ms: latency === undefined ? null : histogramQuantile(latency, 0.99),
    defectRate: good + defect > 0 ? round(defect / (good + defect), 5) : null,
    unknownRate: frames > 0 ? round(unknown / frames, 5) : null,
    errors,
    droppedFrames: dropped,
    camera: withCamera
      ? {
          frames: camFrames,
          frozenShare: camFrames > 0 ? round(frozen / camFrames, 5) : 0,
          darkShare: camFrames > 0 ? round(dark / camFrames, 5) : 0,
          clippedShare: camFrames > 0 ? round(clipped / camFrames, 5) : 0,
        }
      : null,
  };
}

function versionSpans(sortedByEnd: readonly TelemetryWindow[]): VersionSpan[] {
  const spans: VersionSpan[] = [];
  for (const w of sortedByEnd) {
    const frames = w.counts.good + w.counts.defect + w.counts.unknown;
    const last = spans[spans.length - 1];
    if (last !== undefined && last.name === w.modelName && last.version === w.modelVersion) {
      last.to = w.end;
      last.windows++;
      last.frames += frames;
    } else {
      spans.push({
        name: w.modelName,
        version: w.modelVersion,
        from: w.start,
        to: w.end,
        windows: 1,
        frames,
      });
    }
  }
  return spans;
}

/**
 * Sums histograms over the bounds of the first non-empty one; histograms
 * with other bounds (an agent of another version) are left out.
 */
export function mergeHistograms(hs: readonly Histogram[]): Histogram | undefined {
  let merged: Histogram | undefined;
  for (const h of hs) {
    if (h.counts.every((c) => c === 0)) continue;
    if (merged === undefined) {
      merged = { le: [...h.le], counts: [...h.counts] };
      continue;
    }
    if (h.le.length !== merged.le.length || h.le.some((b, i) => b !== merged?.le[i])) continue;
    for (let i = 0; i < merged.counts.length; i++)
      merged.counts[i] = (merged.counts[i] as number) + (h.counts[i] ?? 0);
  }
  return merged;
}

/**
 * The q-quantile of a histogram, linear within its bucket (as Prometheus'
 * histogram_quantile); the overflow bucket answers its lower bound.
 */
export function histogramQuantile(h: Histogram, q: number): number | null {
  const total = h.counts.reduce((s, c) => s + c, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const count = h.counts[i] as number;
    if (below + count >= rank && count > 0) {
      if (i >= h.le.length) return h.le[h.le.length - 1] ?? null;
      const upper = h.le[i] as number;
      const lower = i === 0 ? Math.min(0, upper) : (h.le[i - 1] as number);
      return round(lower + ((upper - lower) * (rank - below)) / count, 3);
    }
    below += count;
  }
  return h.le[h.le.length - 1] ?? null;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
