import type { Logger } from 'pino';
import {
  preprocessImage,
  type AnomalyMap,
  type ModelLease,
  type ModelSlot,
  type ScoringModel,
} from '@linesight/vision';
import {
  describeError,
  isLinesightError,
  type FrameCounters,
  type FrameResult,
  type InputSpec,
  type Manifest,
} from '@linesight/protocol';
import type { Frame, FrameSink } from '../camera/camera.ts';
import { CircuitBreaker, type RunOutcome } from './circuit-breaker.ts';
import { LatencyWindow } from './latency-window.ts';
import { modelRefOf } from './model-ref.ts';
import { unscoredResult } from './unscored-result.ts';

export { modelRefOf } from './model-ref.ts';

/** The slot type the agent runs: scoring models described by their signed manifests. */
export type AgentModelSlot = ModelSlot<ScoringModel, Manifest>;

/** Pipeline stages whose latency is tracked. */
export type Stage = 'capture' | 'queue' | 'preprocess' | 'inference' | 'publish';

/** What the pipeline tells when a version's circuit breaker opens. */
export interface CircuitOpened {
  manifest: Manifest;
  /** Consecutive runs that exceeded the watchdog. */
  trips: number;
  /** The watchdog limit they exceeded. */
  watchdogMs: number;
}

/** Options of the frame pipeline. */
export interface FramePipelineOptions {
  deviceId: string;
  slot: AgentModelSlot;
  /**
   * Frames waiting beyond this are dropped oldest-first: counted, and published
   * as unknown (`overload: ...`, no model, no run) in their place in frame order.
   */
  queueDepth: number;
  publish: (result: FrameResult) => void;
  /**
   * Called after each frame dropped for overload, once its unknown result is
   * published (e.g. for the verdict log: the line was told `unknown`).
   */
  onDropped?: (result: FrameResult) => void;
  /**
   * Called after each live result, e.g. to feed a shadow model, the store or
   * the sampler; `extras` holds the anomaly map (if the model has one) and
   * what `inspect` computed.
   */
  onScored?: (frame: Frame, result: FrameResult, extras: ScoredExtras) => void;
  /**
   * Computes cheap statistics from the preprocessed tensor before the model
   * may consume it (e.g. image statistics for telemetry); must not throw.
   */
  inspect?: (tensor: Float32Array, spec: InputSpec) => unknown;
  /**
   * Asked once a frame is preprocessed: when it returns true, a copy of the
   * frame's input tensor is kept (the model may consume the original) and
   * handed to `onScored` as `extras.input`, e.g. so a shadow model with the
   * same input spec need not decode the frame again.
   */
  keepInput?: () => boolean;
  onCameraError: (err: unknown) => void;
  /**
   * Stop running a version after `tripsToOpen` consecutive watchdog trips on
   * it: its later frames are published as unknown (`circuit-open`) without a
   * run, and `onOpen` is told once. Omitted: runs are never refused.
   */
  circuitBreaker?: { tripsToOpen: number; onOpen: (opened: CircuitOpened) => void };
  logger: Logger;
}

/** What a scored frame carries besides its result. */
export interface ScoredExtras {
  map?: AnomalyMap;
  /** What `inspect` returned for this frame's tensor. */
  inspected?: unknown;
  /** A copy of the frame's input tensor and its spec, when `keepInput` asked for it. */
  input?: { tensor: Float32Array; spec: InputSpec };
}

interface Arrived {
  frame: Frame;
  arrivedAt: number;
  /** The pipeline's own count of arrivals: frame order, whatever the camera numbers. */
  ordinal: number;
}

/** A frame dropped for overload, without its image, waiting for its turn to be published. */
interface Dropped {
  seq: number;
  capturedAt: Date;
  arrivedAt: number;
}

/** A frame between the two stages: preprocessed (or failed) and holding its model lease. */
interface Prepared extends Arrived {
  lease: ModelLease<ScoringModel, Manifest> | undefined;
  tensor: Float32Array | undefined;
  failure: string | undefined;
  inspected: unknown;
  input: { tensor: Float32Array; spec: InputSpec } | undefined;
  queueMs: number;
  preprocessMs: number;
}

/**
 * Camera -> preprocess -> ONNX -> verdict -> publish, in two overlapping
 * stages: while one frame is in inference (in a worker thread), the next is
 * decoded and preprocessed (in libuv's pool). Results are published in frame
 * order. Each frame leases the live model when its preprocessing starts and
 * keeps it to the end, so a swap never splits a frame. A frame with no model,
 * a failed decode or a failed or too slow inference is published as
 * `unknown`, never `good`. A version that keeps exceeding the watchdog gets
 * no more runs once its circuit breaker opens (see `circuitBreaker`).
 * Overload policy: at most `queueDepth` frames wait to be scored; beyond
 * that the oldest waiting frame is dropped: counted in `droppedOverload`, its
 * image let go, and published as `unknown` (reason `overload: ...`, no model)
 * right after the frame ahead of it, so the line gets an answer for every
 * frame, in frame order, and the frames being scored are not held up.
 */
export class FramePipeline implements FrameSink {
  readonly #o: FramePipelineOptions;
  readonly #waiting: Arrived[] = [];
  #arrivals = 0;
  /** Ordinal of the last frame taken from the queue, and of the last one published. */
  #lastStarted = -1;
  #lastPublished = -1;
  /** Dropped frames by the ordinal of the frame they are published after. */
  readonly #droppedAfter = new Map<number, Dropped[]>();
  #ready: Prepared | undefined;
  #preprocessing = false;
  #inferring = false;
  #idle: (() => void)[] = [];
  readonly counters: FrameCounters = {
    captured: 0,
    scored: 0,
    unknown: 0,
    droppedOverload: 0,
    defects: 0,
  };
  readonly framesByVersion: Record<string, number> = {};
  /** End-to-end latency: arrival at the agent to verdict. */
  readonly latency = new LatencyWindow();
  readonly stages: Record<Stage, LatencyWindow> = {
    capture: new LatencyWindow(),
    queue: new LatencyWindow(),
    preprocess: new LatencyWindow(),
    inference: new LatencyWindow(),
    publish: new LatencyWindow(),
  };
  errors = 0;
  /** The model whose frames the latency windows hold. */
  #windowModel: string | undefined;
  /** Inferences abandoned for exceeding the watchdog limit. */
  watchdogTrips = 0;
  /** Frames published as unknown without a run because their version's circuit breaker was open. */
  circuitOpenFrames = 0;
  readonly #breaker: CircuitBreaker | undefined;
  /** Why each opened version is refused, by sha256. */
  readonly #openReasons = new Map<string, string>();
  /** The reason of the version opened last, until a frame finds another version live. */
  #openedLast: string | undefined;

  constructor(options: FramePipelineOptions) {
    this.#o = options;
    const tripsToOpen = options.circuitBreaker?.tripsToOpen;
    this.#breaker = tripsToOpen === undefined ? undefined : new CircuitBreaker({ tripsToOpen });
  }

  frame(frame: Frame): void {
    this.counters.captured++;
    this.#waiting.push({ frame, arrivedAt: performance.now(), ordinal: this.#arrivals++ });
    if (this.#waiting.length > this.#o.queueDepth) this.#dropOldestWaiting();
    this.#pump();
  }

  error(err: unknown): void {
    this.errors++;
    this.#o.onCameraError(err);
  }

  /** Frames accepted but not yet published. */
  get inFlight(): number {
    return (
      this.#waiting.length +
      (this.#ready ? 1 : 0) +
      (this.#preprocessing ? 1 : 0) +
      (this.#inferring ? 1 : 0)
    );
  }

  /** Resolves when no frame is waiting or being processed. */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #dropOldestWaiting(): void {
    const oldest = this.#waiting.shift();
    if (oldest === undefined) return;
    this.counters.droppedOverload++;
    const { seq, capturedAt } = oldest.frame;
    const dropped: Dropped = { seq, capturedAt, arrivedAt: oldest.arrivedAt };
    // The frames ahead of it were all taken from the queue: it follows the last of them.
    if (this.#lastStarted > this.#lastPublished) {
      const after = this.#droppedAfter.get(this.#lastStarted);
      if (after === undefined) this.#droppedAfter.set(this.#lastStarted, [dropped]);
      else after.push(dropped);
    } else this.#publishDropped(dropped);
  }

  #pump(): void {
    if (!this.#preprocessing && this.#ready === undefined) {
      const next = this.#waiting.shift();
      if (next !== undefined) {
        this.#lastStarted = next.ordinal;
        void this.#preprocess(next);
      }
    }
    if (!this.#inferring && this.#ready !== undefined) {
      const item = this.#ready;
      this.#ready = undefined;
      void this.#infer(item);
      // The ready slot is free again: start preprocessing the next frame now (overlap).
      this.#pump();
      return;
    }
    if (this.inFlight === 0) for (const w of this.#idle.splice(0)) w();
  }

  async #preprocess(item: Arrived): Promise<void> {
    this.#preprocessing = true;
    const started = performance.now();
    const lease = this.#o.slot.acquire();
    let tensor: Float32Array | undefined;
    let failure: string | undefined;
    let inspected: unknown;
    let input: Prepared['input'];
    if (lease === undefined) failure = 'no model loaded';
    else {
      try {
        tensor = await preprocessImage(item.frame.image, lease.info.inputSpec);
      } catch (err) {
        failure = describeError(err).slice(0, 500);
      }
      if (tensor !== undefined && this.#o.inspect !== undefined) {
        try {
          inspected = this.#o.inspect(tensor, lease.info.inputSpec);
        } catch (err) {
          this.#o.logger.debug({ err: describeError(err) }, 'frame inspection failed');
        }
      }
      if (tensor !== undefined && this.#o.keepInput?.() === true)
        input = { tensor: tensor.slice(), spec: lease.info.inputSpec };
    }
    this.#preprocessing = false;
    this.#ready = {
      ...item,
      lease,
      tensor,
      failure,
      inspected,
      input,
      queueMs: started - item.arrivedAt,
      preprocessMs: performance.now() - started,
    };
    this.#pump();
  }

  async #infer(item: Prepared): Promise<void> {
    this.#inferring = true;
    const { frame, lease } = item;
    const manifest = lease?.info;
    let score: number | null = null;
    let map: AnomalyMap | undefined;
    let failure = item.failure;
    let inferenceMs = 0;
    // An opened version gets no more runs; with nothing live after it, frames say why.
    const circuitOpen =
      manifest === undefined ? this.#openedLast : this.#openReasons.get(manifest.sha256);
    if (manifest !== undefined && circuitOpen === undefined) this.#openedLast = undefined;
    if (circuitOpen !== undefined) {
      failure = circuitOpen;
      this.circuitOpenFrames++;
    } else if (lease !== undefined && item.tensor !== undefined) {
      const started = performance.now();
      let outcome: RunOutcome = 'ok';
      let watchdogMs: unknown;
      try {
        const output = await lease.model.run(item.tensor);
        score = output.score;
        map = output.map;
      } catch (err) {
        failure = describeError(err).slice(0, 500);
        outcome = 'failed';
        if (isLinesightError(err, 'ERR_MODEL_WATCHDOG')) {
          watchdogMs = err.details?.watchdogMs;
          this.watchdogTrips++;
          outcome = 'watchdog';
        }
      }
      inferenceMs = performance.now() - started;
      if (this.#breaker?.record(lease.info.sha256, outcome) === true)
        this.#open(lease.info, Number(watchdogMs));
    }
    lease?.release();
    const totalMs = performance.now() - item.arrivedAt;
    const captureMs = Math.max(0, Date.now() - frame.capturedAt.getTime() - totalMs);
    let verdict: FrameResult['verdict'] = 'unknown';
    if (manifest !== undefined && manifest.sha256 !== this.#windowModel) {
      // Latency figures describe the live model only: a swap starts them afresh.
      this.#windowModel = manifest.sha256;
      this.latency.reset();
      for (const window of Object.values(this.stages)) window.reset();
    }
    if (score !== null && manifest !== undefined) {
      verdict = score >= manifest.threshold ? 'defect' : 'good';
      this.counters.scored++;
      this.framesByVersion[manifest.version] = (this.framesByVersion[manifest.version] ?? 0) + 1;
      if (verdict === 'defect') this.counters.defects++;
      this.latency.add(totalMs);
      this.stages.inference.add(inferenceMs);
      this.stages.preprocess.add(item.preprocessMs);
    } else {
      this.counters.unknown++;
      // Circuit-open frames are counted on their own and were logged once, when it opened.
      if (lease !== undefined && circuitOpen === undefined) {
        this.errors++;
        this.#o.logger.warn({ seq: frame.seq, reason: failure }, 'frame could not be scored');
      }
    }
    this.stages.capture.add(captureMs);
    this.stages.queue.add(item.queueMs);
    const result: FrameResult = {
      schema: 'linesight.result/v1',
      deviceId: this.#o.deviceId,
      seq: frame.seq,
      capturedAt: frame.capturedAt.toISOString(),
      verdict,
      score,
      threshold: manifest?.threshold ?? null,
      model: manifest ? modelRefOf(manifest) : null,
      ...(verdict === 'unknown' ? { reason: failure ?? 'unknown' } : {}),
      latencyMs: {
        capture: round(captureMs),
        queue: round(item.queueMs),
        preprocess: round(item.preprocessMs),
        inference: round(inferenceMs),
        total: round(totalMs),
      },
    };
    const publishStarted = performance.now();
    this.#publish(result);
    this.stages.publish.add(performance.now() - publishStarted);
    this.#lastPublished = item.ordinal;
    try {
      this.#o.onScored?.(frame, result, {
        ...(map !== undefined && score !== null ? { map } : {}),
        ...(item.inspected !== undefined ? { inspected: item.inspected } : {}),
        ...(item.input !== undefined && score !== null ? { input: item.input } : {}),
      });
    } catch (err) {
      this.#o.logger.error(
        { seq: frame.seq, err: describeError(err) },
        'scored-frame listener failed',
      );
    }
    const droppedAfter = this.#droppedAfter.get(item.ordinal);
    if (droppedAfter !== undefined) {
      this.#droppedAfter.delete(item.ordinal);
      for (const dropped of droppedAfter) this.#publishDropped(dropped);
    }
    this.#inferring = false;
    this.#pump();
  }

  #publish(result: FrameResult): void {
    try {
      this.#o.publish(result);
    } catch (err) {
      this.errors++;
      this.#o.logger.error(
        { seq: result.seq, err: describeError(err) },
        'result could not be published',
      );
    }
  }

  /** Publishes a dropped frame as unknown; it is counted in `droppedOverload`, not `unknown`. */
  #publishDropped(dropped: Dropped): void {
    const totalMs = performance.now() - dropped.arrivedAt;
    const result = unscoredResult({
      deviceId: this.#o.deviceId,
      seq: dropped.seq,
      capturedAt: dropped.capturedAt,
      reason: `overload: dropped unscored, more than ${this.#o.queueDepth} frames were waiting`,
      captureMs: round(Math.max(0, Date.now() - dropped.capturedAt.getTime() - totalMs)),
      waitedMs: round(totalMs),
    });
    this.#publish(result);
    try {
      this.#o.onDropped?.(result);
    } catch (err) {
      this.#o.logger.error(
        { seq: result.seq, err: describeError(err) },
        'dropped-frame listener failed',
      );
    }
  }

  #open(manifest: Manifest, watchdogMs: number): void {
    const trips = this.#breaker?.tripsToOpen ?? 0;
    const reason = `circuit-open: ${manifest.name}@${manifest.version} is no longer run (watchdog: ${trips} consecutive runs over ${watchdogMs} ms)`;
    this.#openReasons.set(manifest.sha256, reason);
    this.#openedLast = reason;
    this.#o.logger.error(
      { model: modelRefOf(manifest), trips, watchdogMs },
      'circuit breaker open: the model keeps exceeding the watchdog',
    );
    try {
      this.#o.circuitBreaker?.onOpen({ manifest, trips, watchdogMs });
    } catch (err) {
      this.#o.logger.error({ err: describeError(err) }, 'circuit breaker listener failed');
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
