/**
 * Settles as `promise` does, or rejects after `ms` with `${what} within ${ms} ms`; the timer
 * is cleared either way, so nothing stays scheduled once the promise settled.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what = 'no answer'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Growth and jitter of a backoff (defaults: doubling, half of each delay randomized). */
export interface BackoffShape {
  /** Growth per attempt, >= 1 (default 2). */
  factor?: number;
  /** Share of each delay that is randomized, 0..1 (default 0.5). */
  jitter?: number;
}

/**
 * Capped exponential backoff with jitter: `min * factor^attempt` (attempt 0 is the first
 * retry), capped at `max`, then scaled to `[1 - jitter, 1]` of that by `random` in [0, 1]
 * (0 the shortest, 1 the full delay), so clients that failed together do not retry in
 * lockstep. The defaults (factor 2, jitter 0.5) give 50-100 %.
 */
export function backoffDelayMs(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: number,
  shape: BackoffShape = {},
): number {
  const { factor = 2, jitter = 0.5 } = shape;
  // The exponent is capped so a long outage cannot overflow to Infinity (0 * Infinity is NaN).
  const cappedMs = Math.min(maxMs, minMs * factor ** Math.min(attempt, 64));
  return Math.round(cappedMs * (1 - jitter * (1 - random)));
}

/** Options of a {@link Backoff}. */
export interface BackoffOptions extends BackoffShape {
  /** First delay in ms (default 500). */
  initialMs?: number;
  /** Largest delay in ms (default 30 000). */
  maxMs?: number;
  /**
   * Source of randomness in [0, 1) (default Math.random); tests pass a constant. The
   * delay is `d * (1 - jitter * random())`, in `[d * (1 - jitter), d]`: it never exceeds
   * the cap, and a constant 0 gives the delay without jitter.
   */
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

/**
 * A {@link backoffDelayMs} that keeps its own attempt count: `next()` after each failure,
 * `reset()` after a success.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #shape: Required<BackoffShape>;
  readonly #random: () => number;
  #attempt = 0;

  /** Takes options already checked with `backoffProblems`. */
  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 500;
    this.#maxMs = options.maxMs ?? 30_000;
    this.#shape = { factor: options.factor ?? 2, jitter: options.jitter ?? 0.5 };
    this.#random = options.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next retry, in ms; grows with each call up to the cap. */
  next(): number {
    // random() 0 means the full delay here, 1 does in backoffDelayMs; for Math.random's
    // values (multiples of 2^-52) 1 - (1 - r) is r exactly, so no delay moves by rounding.
    const delayMs = backoffDelayMs(
      this.#attempt,
      this.#initialMs,
      this.#maxMs,
      1 - this.#random(),
      this.#shape,
    );
    this.#attempt += 1;
    return delayMs;
  }

  /** Starts again from the initial delay. */
  reset(): void {
    this.#attempt = 0;
  }
}
