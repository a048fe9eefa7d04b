import type { TelemetryWindow } from '@linesight/protocol';
import type { MetricSample } from './metrics.ts';
import type { DeviceRecord } from './registry/device-registry.ts';
import { histogramQuantile, mergeHistograms } from './dashboard/device-series.ts';

/** Options of the fleet aggregates. */
export interface FleetMetricsOptions {
  /** Every device's windows that ended in [fromMs, toMs), at most `limit`. */
  windows: (fromMs: number, toMs: number, limit: number) => FleetWindow[];
  devices: () => readonly Pick<DeviceRecord, 'online' | 'reported' | 'telemetry'>[];
  /** The recent aggregates cover the windows that ended this long ago at most. */
  lookbackSec: number;
  /** Windows read per scrape at most (the first to end in the lookback; the rest are left out). */
  maxWindows: number;
  /** A scrape within this long of the last one reuses its window read. */
  cacheMs: number;
  now?: () => number;
}

/** A stored window with the device that sent it. */
export type FleetWindow = TelemetryWindow & { deviceId: string };

const QUANTILES = [0.5, 0.9, 0.99] as const;

/**
 * The agents' metrics rolled up into fleet aggregates for the cloud's
 * /metrics: from the devices' latest telemetry (throughput, the spread of
 * their p99 latency, versions running) and from the telemetry windows they
 * sent over the lookback (frames by verdict, defect rate, latency quantiles
 * from the merged histograms, errors, dropped frames, camera trouble, agent
 * CPU and memory). Every label set is bounded: no per-device labels; the
 * model/version pairs are those running now.
 */
export class FleetMetrics {
  readonly #o: FleetMetricsOptions;
  readonly #now: () => number;
  #cache: { atMs: number; samples: MetricSample[] } | undefined;

  constructor(options: FleetMetricsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The aggregates, the window part cached for `cacheMs`. */
  samples(): MetricSample[] {
    const nowMs = this.#now();
    if (this.#cache === undefined || nowMs - this.#cache.atMs >= this.#o.cacheMs) {
      const windows = this.#o.windows(
        nowMs - this.#o.lookbackSec * 1000,
        nowMs + 1,
        this.#o.maxWindows,
      );
      this.#cache = { atMs: nowMs, samples: windowAggregates(windows, this.#o.lookbackSec) };
    }
    return [...deviceAggregates(this.#o.devices()), ...this.#cache.samples];
  }
}

/** Aggregates of the devices' latest telemetry and reported state. */
export function deviceAggregates(
  devices: readonly Pick<DeviceRecord, 'online' | 'reported' | 'telemetry'>[],
): MetricSample[] {
  let fps = 0;
  const p99s: number[] = [];
  const versions = new Map<string, { model: string; version: string; count: number }>();
  for (const d of devices) {
    if (!d.online) continue;
    const t = d.telemetry;
    if (t !== null) {
      fps += t.fps;
      if (t.frames.scored > 0) p99s.push(t.latencyMs.p99);
    }
    const m = d.reported?.model;
    const key = m === null || m === undefined ? '' : `${m.name}@${m.version}`;
    const entry = versions.get(key) ?? {
      model: m?.name ?? 'none',
      version: m?.version ?? 'none',
      count: 0,
    };
    entry.count++;
    versions.set(key, entry);
  }
  p99s.sort((a, b) => a - b);
  const at = (q: number) => p99s[Math.min(p99s.length - 1, Math.floor(q * p99s.length))] ?? 0;
  return [
    {
      name: 'linesight_fleet_frames_per_second',
      help: 'Frames per second of the online devices together, as they last reported',
      type: 'gauge',
      values: [{ value: round(fps, 3) }],
    },
    {
      name: 'linesight_fleet_device_p99_latency_ms',
      help: 'Spread of the online devices’ reported p99 inference latency over devices: the median device, the 90th percentile device and the slowest',
      type: 'gauge',
      values: [
        { labels: { stat: 'median' }, value: at(0.5) },
        { labels: { stat: 'p90' }, value: at(0.9) },
        { labels: { stat: 'max' }, value: p99s[p99s.length - 1] ?? 0 },
      ],
    },
    {
      name: 'linesight_fleet_devices_running',
      help: 'Online devices by the model version they report running (none: no model)',
      type: 'gauge',
      values: [...versions.values()]
        .sort((a, b) => a.model.localeCompare(b.model) || a.version.localeCompare(b.version))
        .map((v) => ({ labels: { model: v.model, version: v.version }, value: v.count })),
    },
  ];
}

/** Aggregates of the telemetry windows that ended within the lookback. */
export function windowAggregates(
  windows: readonly FleetWindow[],
  lookbackSec: number,
): MetricSample[] {
  let good = 0;
  let defect = 0;
  let unknown = 0;
  let errors = 0;
  let dropped = 0;
  let frozen = 0;
  let dark = 0;
  let cpuSum = 0;
  let cpuMax = 0;
  let rssMax = 0;
  // The newest window of each device tells its current CPU and memory.
  const newest = new Map<string, FleetWindow>();
  for (const w of windows) {
    good += w.counts.good;
    defect += w.counts.defect;
    unknown += w.counts.unknown;
    errors += w.errors;
    dropped += w.droppedFrames;
    frozen += w.camera?.frozenFrames ?? 0;
    dark += w.camera?.darkFrames ?? 0;
    const seen = newest.get(w.deviceId);
    if (seen === undefined || Date.parse(seen.end) < Date.parse(w.end)) newest.set(w.deviceId, w);
  }
  for (const w of newest.values()) {
    cpuSum += w.cpuCores;
    cpuMax = Math.max(cpuMax, w.cpuCores);
    rssMax = Math.max(rssMax, w.rssMb);
  }
  const latency = mergeHistograms(windows.map((w) => w.latencyMs));
  const scope = `in the telemetry windows that ended in the last ${lookbackSec} s`;
  return [
    {
      name: 'linesight_fleet_window_devices',
      help: `Devices with a telemetry window that ended in the last ${lookbackSec} s`,
      type: 'gauge',
      values: [{ value: newest.size }],
    },
    {
      name: 'linesight_fleet_window_frames',
      help: `Frames by verdict, all devices ${scope}`,
      type: 'gauge',
      values: [
        { labels: { verdict: 'good' }, value: good },
        { labels: { verdict: 'defect' }, value: defect },
        { labels: { verdict: 'unknown' }, value: unknown },
      ],
    },
    {
      name: 'linesight_fleet_window_defect_rate',
      help: `Defect verdicts per scored frame, all devices ${scope} (0 without frames)`,
      type: 'gauge',
      values: [{ value: good + defect > 0 ? round(defect / (good + defect), 6) : 0 }],
    },
    {
      name: 'linesight_fleet_window_inference_latency_ms',
      help: `Inference latency quantiles of every frame ${scope}, from the devices' merged latency histograms (0 without frames)`,
      type: 'gauge',
      values: QUANTILES.map((q) => ({
        labels: { quantile: String(q) },
        value: latency === undefined ? 0 : (histogramQuantile(latency, q) ?? 0),
      })),
    },
    {
      name: 'linesight_fleet_window_errors',
      help: `Frame errors, all devices ${scope}`,
      type: 'gauge',
      values: [{ value: errors }],
    },
    {
      name: 'linesight_fleet_window_dropped_frames',
      help: `Frames dropped under overload, all devices ${scope}`,
      type: 'gauge',
      values: [{ value: dropped }],
    },
    {
      name: 'linesight_fleet_window_camera_frames',
      help: `Frozen (identical to the one before) and dark camera frames, all devices ${scope}`,
      type: 'gauge',
      values: [
        { labels: { state: 'frozen' }, value: frozen },
        { labels: { state: 'dark' }, value: dark },
      ],
    },
    {
      name: 'linesight_fleet_agent_cpu_cores',
      help: `Agent process CPU cores in each device's newest window of the last ${lookbackSec} s: summed over devices, and the largest`,
      type: 'gauge',
      values: [
        { labels: { stat: 'sum' }, value: round(cpuSum, 3) },
        { labels: { stat: 'max' }, value: round(cpuMax, 3) },
      ],
    },
    {
      name: 'linesight_fleet_agent_rss_mb',
      help: `Largest agent resident memory (MB) in a device's newest window of the last ${lookbackSec} s`,
      type: 'gauge',
      values: [{ labels: { stat: 'max' }, value: round(rssMax, 1) }],
    },
  ];
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
