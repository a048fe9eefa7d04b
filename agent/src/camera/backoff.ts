/** Options of a capped exponential backoff with jitter. */
export interface BackoffOptions {
  /** First delay in ms (default 500). */
  initialMs?: number;
  /** Largest delay in ms (default 30 000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /**
   * Share of each delay that is randomized, 0..1 (default 0.5): the delay is
   * drawn from `[d * (1 - jitter), d]`, so it never exceeds the cap and
   * cameras that failed together do not retry in lockstep.
   */
  jitter?: number;
  /** Source of randomness in [0, 1) (default Math.random); tests pass a constant. */
  random?: () => number;
}

/** Checks backoff options and returns every problem found (empty when valid). */
export function backoffProblems(options: BackoffOptions, prefix = 'backoff'): string[] {
  const problems: string[] = [];
  const { initialMs = 500, maxMs = 30_000, factor = 2, jitter = 0.5 } = options;
  if (!(Number.isFinite(initialMs) && initialMs > 0)) {
    problems.push(`${prefix}.initialMs must be > 0`);
  }
  if (!(Number.isFinite(maxMs) && maxMs >= initialMs)) {
    problems.push(`${prefix}.maxMs must be >= initialMs`);
  }
  if (!(Number.isFinite(factor) && factor >= 1)) problems.push(`${prefix}.factor must be >= 1`);
  if (!(jitter >= 0 && jitter <= 1)) problems.push(`${prefix}.jitter must be in [0, 1]`);
  return problems;
}

/** Capped exponential backoff with jitter: `next()` after each failure, `reset()` after a success. */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  /** Takes options already checked with `backoffProblems`. */
  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 500;
    this.#maxMs = options.maxMs ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#jitter = options.jitter ?? 0.5;
    this.#random = options.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next retry, in ms; grows with each call up to the cap. */
  next(): number {
    // Exponent capped so a long outage cannot overflow to Infinity.
    const exponent = Math.min(this.#attempt, 64);
    this.#attempt += 1;
    const capped = Math.min(this.#maxMs, this.#initialMs * this.#factor ** exponent);
    return Math.round(capped * (1 - this.#jitter * this.#random()));
  }

  /** Starts again from the initial delay. */
  reset(): void {
    this.#attempt = 0;
  }
}
