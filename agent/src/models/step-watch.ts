/** A step that has waited beyond its limit (reported again every limit while it waits, and once when it ends). */
export interface SlowStep {
  /** What waits, for a person: e.g. "fsync of the downloaded artifact". */
  step: string;
  waitedMs: number;
  limitMs: number;
  /** False while still waiting; true once, when the step finally ended (well or not). */
  done: boolean;
}

/** Told about steps that wait beyond their limit. */
export type SlowStepListener = (slow: SlowStep) => void;

/**
 * Awaits `work`, a step that cannot be aborted (an fsync, a write, a rename on a
 * busy disk), and says so when it outlasts `limitMs`: `onSlow` is called once
 * the limit has passed, again after each further limit while it still waits, and
 * once more (done) when it ends. The step is not abandoned: an fsync cannot be
 * cancelled, and giving up on it would leave its thread and file busy while a
 * retry queued behind it. What this guarantees is that a long wait is never silent.
 */
export async function watchStep<T>(
  step: string,
  limitMs: number,
  onSlow: SlowStepListener | undefined,
  work: () => Promise<T>,
  nowMs: () => number = Date.now,
): Promise<T> {
  if (onSlow === undefined) return work();
  const startedMs = nowMs();
  let slow = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => {
      slow = true;
      onSlow({ step, waitedMs: nowMs() - startedMs, limitMs, done: false });
      arm();
    }, limitMs);
    timer.unref?.();
  };
  arm();
  try {
    return await work();
  } finally {
    clearTimeout(timer);
    if (slow) onSlow({ step, waitedMs: nowMs() - startedMs, limitMs, done: true });
  }
}
