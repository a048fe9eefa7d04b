/** Options of a publish pacer. */
export interface PublishPacerOptions {
  /** Publishes a second, on average. */
  ratePerSec: number;
  /** Publishes that may start at once after a quiet spell (default: one second's worth). */
  burst?: number;
  /** Clock (tests). */
  nowMs?: () => number;
  /** Waits `ms` (tests). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A token bucket in front of the cloud's desired-state publishes: at most
 * `burst` start at once, then `ratePerSec` a second. A wave of a few hundred
 * devices goes out at once; a wave of 10,000 reaches the devices over the
 * seconds the rate needs, so their downloads, reconnects and reports do not
 * all arrive in the same moment (one bucket for every caller: a rollout and a
 * key rotation together share it). Waiters are served in order.
 */
export class PublishPacer {
  readonly ratePerSec: number;
  readonly burst: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #tokens: number;
  #refilledMs: number;
  /** The end of the line of callers: each waits for the one before it. */
  #line: Promise<void> = Promise.resolve();

  constructor(options: PublishPacerOptions) {
    if (!(options.ratePerSec > 0))
      throw new RangeError(`ratePerSec must be above 0, not ${options.ratePerSec}`);
    this.ratePerSec = options.ratePerSec;
    this.burst = Math.max(1, options.burst ?? options.ratePerSec);
    this.#now = options.nowMs ?? Date.now;
    this.#sleep =
      options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, Math.ceil(ms))));
    this.#tokens = this.burst;
    this.#refilledMs = this.#now();
  }

  /** Resolves when the next publish may start. */
  take(): Promise<void> {
    const turn = this.#line.then(() => this.#takeNow());
    this.#line = turn;
    return turn;
  }

  async #takeNow(): Promise<void> {
    for (;;) {
      const now = this.#now();
      this.#tokens = Math.min(
        this.burst,
        this.#tokens + ((now - this.#refilledMs) / 1000) * this.ratePerSec,
      );
      this.#refilledMs = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await this.#sleep(((1 - this.#tokens) / this.ratePerSec) * 1000);
    }
  }
}
