import type { DeviceEvent, Manifest, ReportedError } from '@linesight/protocol';

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
  nowMs: () => number = () => performance.now(),
): Promise<T> {
  if (onSlow === undefined) return work();
  const startedMs = nowMs();
  let slow = false;
  let timer: NodeJS.Timeout | undefined;
  // A timer may fire a little before its delay by the clock (the event loop measures from the
  // time it cached at the start of its turn): a notice is due only once the step has waited the
  // full limit by `nowMs`, so an early timer is armed again for the rest.
  let dueMs = limitMs;
  const arm = (delayMs: number) => {
    timer = setTimeout(() => {
      const waitedMs = nowMs() - startedMs;
      if (waitedMs < dueMs) {
        // At most a limit: a clock set back does not silence the watch for as long.
        arm(Math.min(limitMs, dueMs - waitedMs));
        return;
      }
      slow = true;
      onSlow({ step, waitedMs, limitMs, done: false });
      dueMs = waitedMs + limitMs;
      arm(limitMs);
    }, delayMs);
    timer.unref?.();
  };
  arm(limitMs);
  try {
    return await work();
  } finally {
    clearTimeout(timer);
    if (slow) onSlow({ step, waitedMs: nowMs() - startedMs, limitMs, done: true });
  }
}

/** What the agent says about a slow step: an event, and what becomes of its reported lastError. */
export interface SlowStepNotice {
  event: Pick<DeviceEvent, 'level' | 'type' | 'message' | 'code'>;
  /** The new lastError (stalled), `keep` the current one, or `clear` a stalled notice. */
  lastError: ReportedError | 'keep' | 'clear';
}

/**
 * The event and reported state for a slow step of `manifest`'s update: while it
 * waits, a warn `model.step_stalled` and lastError ERR_AGENT_STALLED (transient
 * for the cloud's rollouts); when it ends, an info `model.step_finished`, and the
 * stalled lastError (only that one: a real error stays) cleared.
 */
export function slowStepNotice(
  manifest: Manifest,
  slow: SlowStep,
  current: ReportedError | undefined,
  now: Date = new Date(),
): SlowStepNotice {
  const limit = `limit ${Math.round(slow.limitMs / 1000)} s`;
  if (slow.done)
    return {
      event: {
        level: 'info',
        type: 'model.step_finished',
        message: `${slow.step} finished after ${Math.round(slow.waitedMs / 1000)} s (${limit})`,
      },
      lastError: current?.code === 'ERR_AGENT_STALLED' ? 'clear' : 'keep',
    };
  const message = `${slow.step} has waited ${Math.round(slow.waitedMs / 1000)} s (${limit}); still waiting`;
  return {
    event: { level: 'warn', type: 'model.step_stalled', message, code: 'ERR_AGENT_STALLED' },
    lastError: {
      code: 'ERR_AGENT_STALLED',
      message,
      at: now.toISOString(),
      model: { name: manifest.name, version: manifest.version, sha256: manifest.sha256 },
    },
  };
}
