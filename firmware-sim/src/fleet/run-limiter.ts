/** Runs calls with at most `maxInFlight` unfinished at once; the rest wait their turn in order. */
export type RunLimiter = <T>(call: () => Promise<T>) => Promise<T>;

/**
 * A limiter of calls in flight. Its queue is bounded by its callers (each simulated
 * device has at most a frame and a golden check waiting), so it declares no limit of its own.
 */
export function runLimiter(maxInFlight: number): RunLimiter {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
    throw new RangeError(`maxInFlight must be a positive integer, not ${maxInFlight}`);
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(call: () => Promise<T>): Promise<T> => {
    if (running >= maxInFlight) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await call();
    } finally {
      // The slot passes to the next waiter as it is, so no newcomer slips in between.
      const next = waiting.shift();
      if (next === undefined) running--;
      else next();
    }
  };
}
