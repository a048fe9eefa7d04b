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

/**
 * Capped exponential backoff with jitter: `min * 2^attempt` (attempt 0 is the first retry),
 * capped at `max`, scaled to 50-100 % by `random` in [0, 1), so clients that failed together
 * do not retry in lockstep.
 */
export function backoffDelayMs(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: number,
): number {
  // The exponent is capped so a long outage cannot overflow to Infinity.
  return Math.round(Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30)) * (0.5 + random / 2));
}
