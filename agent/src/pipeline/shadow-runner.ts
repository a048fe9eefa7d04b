import type { Logger } from 'pino';
import { preprocessImage, type ModelSlot, type ScoringModel } from '@linesight/vision';
import { isDeepStrictEqual } from 'node:util';
import {
  describeError,
  type InputSpec,
  type Manifest,
  type ShadowStats,
  type Verdict,
} from '@linesight/protocol';
import type { Frame } from '../camera/camera.ts';
import { modelRefOf } from './model-ref.ts';
import { LatencyWindow } from './latency-window.ts';

/** Options of the shadow runner. */
export interface ShadowRunnerOptions {
  /**
   * True while the live pipeline has a frame waiting or in work. The shadow
   * scores only on idle capacity: it starts a frame only when this is false,
   * and drops a frame it has preprocessed if a live frame arrived meanwhile.
   * Omitted: the live pipeline is taken to be idle.
   */
  liveBusy?: () => boolean;
  /** Defers the start of a shadow frame until the live pipeline's bookkeeping is done. */
  defer?: (run: () => void) => void;
  /**
   * At least one of this many offered frames is scored even when the shadow
   * is not forecast to finish before the next live frame, so a candidate
   * slower than the gap between frames is still judged (default 8).
   */
  sampleEvery?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** What the shadow is told about a live verdict. */
export interface LiveVerdict {
  verdict: Verdict;
  score: number | null;
  /** The live frame's latency; with it the shadow forecasts the idle time before the next frame. */
  latencyMs?: { total: number };
}

const DEFAULT_SAMPLE_EVERY = 8;
/** Intervals between live verdicts and shadow run times the forecast looks at. */
const FORECAST_WINDOW = 16;

/**
 * Scores live frames with a candidate model off the critical path, on idle
 * capacity only: it takes a frame only when it is idle itself, the live
 * pipeline is idle (so it never builds a backlog), and its recent run time
 * fits in the gap before the next live frame (the median interval between
 * live verdicts less this frame's live latency; one frame in `sampleEvery` is
 * scored regardless); and it gives up a frame before its inference if a live
 * frame arrived while it was preprocessing. Frames it did not score are
 * counted as `skipped` (of which `yielded` gave way to the live model). It
 * compares its verdicts with the live ones.
 */
export class ShadowRunner {
  readonly slot: ModelSlot<ScoringModel, Manifest>;
  readonly #log: Logger;
  readonly #liveBusy: () => boolean;
  readonly #defer: (run: () => void) => void;
  readonly #sampleEvery: number;
  readonly #now: () => number;
  /** Intervals between offered live verdicts, and the shadow's own run times. */
  readonly #intervals = new LatencyWindow(FORECAST_WINDOW);
  readonly #runTimes = new LatencyWindow(FORECAST_WINDOW);
  #lastOfferAt: number | undefined;
  #offersSinceStart = 0;
  #busy = false;
  #stats = emptyStats();
  #statsFor: string | undefined;
  readonly #latency = new LatencyWindow(256);
  #idle: (() => void)[] = [];

  constructor(
    slot: ModelSlot<ScoringModel, Manifest>,
    logger: Logger,
    options: ShadowRunnerOptions = {},
  ) {
    this.slot = slot;
    this.#log = logger;
    this.#liveBusy = options.liveBusy ?? (() => false);
    this.#defer = options.defer ?? ((run) => setImmediate(run));
    this.#sampleEvery = Math.max(1, options.sampleEvery ?? DEFAULT_SAMPLE_EVERY);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Frames the shadow gave up because the live pipeline had work (also counted in `skipped`). */
  get yielded(): number {
    return this.#stats.yielded;
  }

  /** Frames the shadow scored from the live input tensor instead of decoding them again. */
  get reusedInputs(): number {
    return this.#stats.reusedInputs;
  }

  /** True when an offer now could be scored: the pipeline then keeps a copy of the frame's input. */
  wantsInput(): boolean {
    return this.slot.hasModel && !this.#busy;
  }

  /**
   * Offers a frame that the live model scored; returns at once. With `input`
   * (the live input tensor and its spec) and a shadow of the same input spec,
   * the frame is not decoded again.
   */
  offer(frame: Frame, live: LiveVerdict, input?: { tensor: Float32Array; spec: InputSpec }): void {
    const now = this.#now();
    if (this.#lastOfferAt !== undefined) this.#intervals.add(now - this.#lastOfferAt);
    this.#lastOfferAt = now;
    if (!this.slot.hasModel || live.score === null) return;
    this.#resetIfChanged();
    if (this.#busy) {
      this.#stats.skipped++;
      return;
    }
    this.#offersSinceStart++;
    if (this.#offersSinceStart < this.#sampleEvery && !this.#fitsBeforeNextFrame(live)) {
      this.#yield();
      return;
    }
    this.#offersSinceStart = 0;
    this.#busy = true;
    // The live pipeline calls this while it finishes a frame: look at it once that is done.
    this.#defer(
      () => void this.#score(frame, { verdict: live.verdict, score: live.score as number }, input),
    );
  }

  /** True until there is history to forecast with, then: the shadow's median run fits the gap. */
  #fitsBeforeNextFrame(live: LiveVerdict): boolean {
    const intervals = this.#intervals.size;
    if (intervals < 2 || this.#runTimes.size === 0) return true;
    const gapMs = this.#intervals.summary().p50 - (live.latencyMs?.total ?? 0);
    return this.#runTimes.summary().p50 <= gapMs;
  }

  async #score(
    frame: Frame,
    live: { verdict: Verdict; score: number },
    input: { tensor: Float32Array; spec: InputSpec } | undefined,
  ): Promise<void> {
    const lease = this.#liveBusy() ? undefined : this.slot.acquire();
    try {
      if (lease === undefined) {
        if (this.slot.hasModel) this.#yield();
        return;
      }
      const started = this.#now();
      let tensor: Float32Array;
      if (input !== undefined && isDeepStrictEqual(input.spec, lease.info.inputSpec)) {
        tensor = input.tensor;
        this.#stats.reusedInputs++;
      } else {
        try {
          tensor = await preprocessImage(frame.image, lease.info.inputSpec);
        } catch (err) {
          this.#failed(err);
          return;
        }
      }
      if (this.#liveBusy()) {
        this.#yield();
        return;
      }
      try {
        const inferenceStarted = this.#now();
        const out = await lease.model.run(tensor);
        const ended = this.#now();
        // Telemetry reports inference alone (the rollout gate compares it with live inference);
        // the forecast needs the whole run, decode included.
        this.#latency.add(ended - inferenceStarted);
        this.#runTimes.add(ended - started);
        const verdict: Verdict = out.score >= lease.info.threshold ? 'defect' : 'good';
        this.#stats.scored++;
        if (verdict === live.verdict) this.#stats.agreed++;
        this.#stats.absDiffSum += Math.abs(out.score - live.score);
      } catch (err) {
        this.#failed(err);
      }
    } finally {
      lease?.release();
      this.#busy = false;
      for (const w of this.#idle.splice(0)) w();
    }
  }

  #yield(): void {
    this.#stats.skipped++;
    this.#stats.yielded++;
  }

  #failed(err: unknown): void {
    this.#stats.errors++;
    this.#log.debug({ err: describeError(err) }, 'shadow scoring failed');
  }

  /** Statistics of the current shadow model, if there is one. */
  stats(): ShadowStats | undefined {
    const manifest = this.slot.info;
    if (manifest === undefined) return undefined;
    this.#resetIfChanged();
    const s = this.#stats;
    return {
      model: modelRefOf(manifest),
      scored: s.scored,
      skipped: s.skipped,
      errors: s.errors,
      agreementRate: s.scored === 0 ? null : s.agreed / s.scored,
      meanAbsScoreDiff: s.scored === 0 ? null : s.absDiffSum / s.scored,
      latencyMs: this.#latency.summary(),
    };
  }

  /** Resolves when no shadow scoring is in flight. */
  drain(): Promise<void> {
    return this.#busy ? new Promise((r) => this.#idle.push(r)) : Promise.resolve();
  }

  #resetIfChanged(): void {
    const sha = this.slot.info?.sha256;
    if (sha !== this.#statsFor) {
      this.#statsFor = sha;
      this.#stats = emptyStats();
      this.#runTimes.reset();
      this.#latency.reset();
    }
  }
}

function emptyStats() {
  return {
    scored: 0,
    skipped: 0,
    yielded: 0,
    reusedInputs: 0,
    errors: 0,
    agreed: 0,
    absDiffSum: 0,
  };
}
