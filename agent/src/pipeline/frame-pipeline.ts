import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { OnnxModel, ModelSlot } from '@linesight/vision';
import {
  describeError,
  type FrameCounters,
  type FrameResult,
  type Manifest,
  type ModelRef,
} from '@linesight/protocol';
import type { Frame, FrameSink } from '../camera/camera.ts';
import { LatencyWindow } from './latency-window.ts';

/** The slot type the agent runs: ONNX models described by their signed manifests. */
export type AgentModelSlot = ModelSlot<OnnxModel, Manifest>;

/** Options of the frame pipeline. */
export interface FramePipelineOptions {
  deviceId: string;
  slot: AgentModelSlot;
  /** Frames waiting beyond this are dropped oldest-first and counted. */
  queueDepth: number;
  publish: (result: FrameResult) => void;
  onCameraError: (err: unknown) => void;
  logger: Logger;
}

/** The model ref of a manifest. */
export function modelRefOf(m: Manifest): ModelRef {
  return { name: m.name, version: m.version, sha256: m.sha256 };
}

/**
 * Camera -> preprocess -> ONNX -> verdict -> publish, one frame at a time.
 * Each frame leases the live model, so a swap never splits a frame. A frame
 * with no model or a failed inference is published as `unknown`, never `good`.
 * Overload policy: keep at most `queueDepth` waiting frames, drop the oldest.
 */
export class FramePipeline implements FrameSink {
  readonly #o: FramePipelineOptions;
  readonly #queue: Frame[] = [];
  #running = false;
  #idle: (() => void)[] = [];
  readonly counters: FrameCounters = {
    captured: 0,
    scored: 0,
    unknown: 0,
    droppedOverload: 0,
    defects: 0,
  };
  readonly framesByVersion: Record<string, number> = {};
  readonly latency = new LatencyWindow();
  errors = 0;

  constructor(options: FramePipelineOptions) {
    this.#o = options;
  }

  frame(frame: Frame): void {
    this.counters.captured++;
    this.#queue.push(frame);
    if (this.#queue.length > this.#o.queueDepth) {
      this.#queue.shift();
      this.counters.droppedOverload++;
    }
    if (!this.#running) void this.#run();
  }

  error(err: unknown): void {
    this.errors++;
    this.#o.onCameraError(err);
  }

  /** Resolves when no frame is waiting or being scored. */
  drain(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let frame = this.#queue.shift(); frame !== undefined; frame = this.#queue.shift()) {
        const result = await this.#score(frame);
        this.#o.publish(result);
      }
    } finally {
      this.#running = false;
      const waiters = this.#idle;
      this.#idle = [];
      for (const w of waiters) w();
    }
  }

  async #score(frame: Frame): Promise<FrameResult> {
    const started = performance.now();
    const base = {
      schema: 'linesight.result/v1' as const,
      deviceId: this.#o.deviceId,
      seq: frame.seq,
      capturedAt: frame.capturedAt.toISOString(),
    };
    const lease = this.#o.slot.acquire();
    if (lease === undefined) {
      this.counters.unknown++;
      return {
        ...base,
        verdict: 'unknown',
        score: null,
        threshold: null,
        model: null,
        reason: 'no model loaded',
        latencyMs: { preprocess: 0, inference: 0, total: 0 },
      };
    }
    const manifest = lease.info;
    try {
      const out = await lease.model.scoreImage(frame.image);
      const total = performance.now() - started;
      this.latency.add(total);
      this.counters.scored++;
      this.framesByVersion[manifest.version] = (this.framesByVersion[manifest.version] ?? 0) + 1;
      const defect = out.score >= manifest.threshold;
      if (defect) this.counters.defects++;
      return {
        ...base,
        verdict: defect ? 'defect' : 'good',
        score: out.score,
        threshold: manifest.threshold,
        model: modelRefOf(manifest),
        latencyMs: {
          preprocess: round(out.preprocessMs),
          inference: round(out.inferenceMs),
          total: round(total),
        },
      };
    } catch (err) {
      this.counters.unknown++;
      this.errors++;
      this.#o.logger.warn({ seq: frame.seq, err: describeError(err) }, 'frame could not be scored');
      return {
        ...base,
        verdict: 'unknown',
        score: null,
        threshold: manifest.threshold,
        model: modelRefOf(manifest),
        reason: describeError(err).slice(0, 500),
        latencyMs: { preprocess: 0, inference: 0, total: round(performance.now() - started) },
      };
    } finally {
      lease.release();
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
