import { scoreBounds, WINDOW_BOUNDS, type FrameResult, type StoreState } from '@linesight/protocol';
import { CameraHealthAccumulator } from '../sampling/camera-health.ts';
import type { FrameImageStats } from '../sampling/image-stats.ts';
import type { WindowInput } from './edge-store.ts';
import { FixedHistogram, linearBounds } from './histogram.ts';

const LATENCY_BOUNDS_MS = [1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200, 300, 500, 1000, 2000];

/**
 * Accumulates one telemetry window: verdict counts, latency, score and image
 * statistic histograms, errors, dropped frames, and the agent's CPU and RSS
 * over the window. `close()` returns the window and starts the next.
 */
export class TelemetryWindowAggregator {
  readonly #now: () => number;
  #start: number;
  #cpu = process.cpuUsage();
  #counts = { good: 0, defect: 0, unknown: 0 };
  #model: { name: string; version: string } | null = null;
  #threshold: number | null = null;
  readonly #latency = new FixedHistogram(LATENCY_BOUNDS_MS);
  #score = new FixedHistogram(linearBounds(0, 1, 20));
  // Image bounds are shared with model reference profiles, so the cloud compares bin for bin.
  readonly #brightness = new FixedHistogram(WINDOW_BOUNDS.brightness);
  readonly #contrast = new FixedHistogram(WINDOW_BOUNDS.contrast);
  readonly #sharpness = new FixedHistogram(WINDOW_BOUNDS.sharpness);
  readonly #camera = new CameraHealthAccumulator();

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#start = now();
  }

  /** Counts one scored (or unknown) frame. */
  add(result: FrameResult, stats?: FrameImageStats): void {
    this.#counts[result.verdict]++;
    if (result.model !== null)
      this.#model = { name: result.model.name, version: result.model.version };
    if (result.threshold !== null && result.threshold !== this.#threshold && result.threshold > 0) {
      // Score buckets follow the model: 0 to twice its threshold.
      this.#threshold = result.threshold;
      this.#score = new FixedHistogram(scoreBounds(result.threshold));
    }
    if (result.score !== null) {
      this.#latency.add(result.latencyMs.total);
      this.#score.add(result.score);
    }
    if (stats !== undefined) {
      this.#brightness.add(stats.brightness);
      this.#contrast.add(stats.contrast);
      this.#sharpness.add(stats.sharpness);
      this.#camera.add(stats);
    }
  }

  /** Ends the window and starts the next. */
  close(extra: {
    droppedFrames: number;
    errors: number;
    samples?: number;
    store?: StoreState;
  }): WindowInput {
    const end = this.#now();
    const cpu = process.cpuUsage(this.#cpu);
    const elapsedUs = Math.max(1, (end - this.#start) * 1000);
    const camera = this.#camera.close();
    const window: WindowInput = {
      start: new Date(this.#start).toISOString(),
      end: new Date(end).toISOString(),
      modelName: this.#model?.name ?? null,
      modelVersion: this.#model?.version ?? null,
      counts: { ...this.#counts },
      droppedFrames: extra.droppedFrames,
      errors: extra.errors,
      latencyMs: this.#latency.snapshot(),
      score: this.#score.snapshot(),
      brightness: this.#brightness.snapshot(),
      contrast: this.#contrast.snapshot(),
      sharpness: this.#sharpness.snapshot(),
      cpuCores: Math.round(((cpu.user + cpu.system) / elapsedUs) * 1000) / 1000,
      rssMb: Math.round((process.memoryUsage.rss() / 1024 / 1024) * 10) / 10,
      samples: extra.samples ?? 0,
      ...(extra.store !== undefined ? { store: extra.store } : {}),
      ...(camera !== undefined ? { camera } : {}),
    };
    this.#start = end;
    this.#cpu = process.cpuUsage();
    this.#counts = { good: 0, defect: 0, unknown: 0 };
    for (const h of [this.#latency, this.#score, this.#brightness, this.#contrast, this.#sharpness])
      h.reset();
    return window;
  }
}
