/** What became of one inference run, as the breaker counts it. */
export type RunOutcome = 'ok' | 'watchdog' | 'failed';

/** Options of a circuit breaker. */
export interface CircuitBreakerOptions {
  /** Consecutive watchdog trips on one version that open the breaker for it. */
  tripsToOpen: number;
}

/**
 * Counts consecutive watchdog trips of the model version frames go to and
 * opens for that version at `tripsToOpen`. A successful run resets the count;
 * a run that failed in another way neither counts nor resets it, so errors
 * between hangs cannot keep a hanging model alive. A version stays open for
 * good (the agent quarantines it, so it never runs here again); a different
 * version starts from zero. Versions are opaque keys (the agent uses sha256).
 */
export class CircuitBreaker {
  readonly tripsToOpen: number;
  #version: string | undefined;
  #consecutive = 0;
  readonly #open = new Set<string>();

  constructor(options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.tripsToOpen) || options.tripsToOpen < 1)
      throw new RangeError(`tripsToOpen must be a whole number of at least 1`);
    this.tripsToOpen = options.tripsToOpen;
  }

  /** True when runs on `version` must not start: its breaker opened. */
  isOpen(version: string): boolean {
    return this.#open.has(version);
  }

  /** Consecutive watchdog trips counted so far on `version` (0 once it is open). */
  consecutiveTrips(version: string): number {
    return version === this.#version ? this.#consecutive : 0;
  }

  /** Records one run on `version`; true when this run opened the breaker. */
  record(version: string, outcome: RunOutcome): boolean {
    if (this.#open.has(version)) return false;
    if (version !== this.#version) {
      // Frames reach inference in arrival order, so a new version means the old one is done.
      this.#version = version;
      this.#consecutive = 0;
    }
    if (outcome === 'ok') this.#consecutive = 0;
    else if (outcome === 'watchdog' && ++this.#consecutive >= this.tripsToOpen) {
      this.#open.add(version);
      this.#consecutive = 0;
      return true;
    }
    return false;
  }
}
