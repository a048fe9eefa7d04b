/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** Gives up after this long, with an error naming `what`. */
  timeoutMs?: number;
  /** Pause between two checks. */
  intervalMs?: number;
  /** What is awaited, for the timeout message. */
  what?: string;
  /**
   * For waits on work whose length depends on the machine's load (a rollout over a fleet):
   * read after each check, and whenever its value differs from the last one the timeout
   * starts again. The wait then fails when the work stops moving for `timeoutMs`, not when
   * a busy machine makes it slow.
   */
  progress?: () => string;
}

/**
 * Polls `check` until it returns a value other than undefined (and not `false`),
 * and resolves with it; throws after `timeoutMs` with `what` and the last error
 * `check` threw. The one way tests wait for something they cannot subscribe to.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: EventuallyOptions = {},
): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 200, what = 'a condition', progress } = options;
  // The deadline is a timestamp compared once per round, not a timer: nothing is scheduled
  // that could fire once the wait has ended, and progress is read just before each
  // comparison, so a move since the last round always pushes the deadline out before it is
  // judged (a stale deadline cannot fail a wait whose work has moved on).
  let deadline = Date.now() + timeoutMs;
  let lastProgress = progress?.();
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    const now = progress?.();
    if (now !== lastProgress) {
      lastProgress = now;
      deadline = Date.now() + timeoutMs;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms ${progress ? 'without progress ' : ''}waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
