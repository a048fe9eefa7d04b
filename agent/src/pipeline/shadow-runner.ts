import type { Logger } from 'pino';
import type { ModelSlot, ScoringModel } from '@linesight/vision';
import { describeError, type Manifest, type ShadowStats, type Verdict } from '@linesight/protocol';
import type { Frame } from '../camera/camera.ts';
import { modelRefOf } from './model-ref.ts';
import { LatencyWindow } from './latency-window.ts';

/**
 * Scores live frames with a candidate model off the critical path. It takes
 * a frame only when idle (so it never builds a backlog or delays the live
 * model) and compares its verdicts with the live ones.
 */
export class ShadowRunner {
  readonly slot: ModelSlot<ScoringModel, Manifest>;
  readonly #log: Logger;
  #busy = false;
  #stats = emptyStats();
  #statsFor: string | undefined;
  readonly #latency = new LatencyWindow(256);
  #idle: (() => void)[] = [];

  constructor(slot: ModelSlot<ScoringModel, Manifest>, logger: Logger) {
    this.slot = slot;
    this.#log = logger;
  }

  /** Offers a frame that the live model scored; returns at once. */
  offer(frame: Frame, live: { verdict: Verdict; score: number | null }): void {
    if (!this.slot.hasModel || live.score === null) return;
    this.#resetIfChanged();
    if (this.#busy) {
      this.#stats.skipped++;
      return;
    }
    const lease = this.slot.acquire();
    if (lease === undefined) return;
    this.#busy = true;
    const started = performance.now();
    lease.model
      .scoreImage(frame.image)
      .then(
        (out) => {
          this.#latency.add(performance.now() - started);
          const verdict: Verdict = out.score >= lease.info.threshold ? 'defect' : 'good';
          this.#stats.scored++;
          if (verdict === live.verdict) this.#stats.agreed++;
          this.#stats.absDiffSum += Math.abs(out.score - (live.score as number));
        },
        (err: unknown) => {
          this.#stats.errors++;
          this.#log.debug({ err: describeError(err) }, 'shadow scoring failed');
        },
      )
      .finally(() => {
        lease.release();
        this.#busy = false;
        for (const w of this.#idle.splice(0)) w();
      });
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
    }
  }
}

function emptyStats() {
  return { scored: 0, skipped: 0, errors: 0, agreed: 0, absDiffSum: 0 };
}
