import type { FrameResult } from '@linesight/protocol';

/** A verdict as the line received it, with the test's clock at receipt. */
export interface LineVerdict {
  result: FrameResult;
  receivedAtMs: number;
}

/** What the line got for one device over a window of wall-clock time. */
export interface Availability {
  /** Camera frames the line expected: every frame taken, plus the ones a stopped agent or a stalled camera did not take. */
  frames: number;
  /** Frames with a verdict (good, defect or unknown) received within the budget. */
  inBudget: number;
  /** Frames whose verdict came, but later than the budget. */
  late: number;
  /** Frames the camera took (a sequence number) that never got a verdict at the line. */
  lostInProcess: number;
  /** Frames due while no agent process ran (between two processes, by the clock and the frame rate). */
  lostAgentDown: number;
  /**
   * Frames due while a running agent took none (a gap of more than two frame periods without
   * a sequence gap): the camera had them, the agent did not read them in time.
   */
  lostStalled: number;
  /**
   * Frames the camera itself did not take on time (its own process starved), by its own
   * ledger: not due to the agent, so outside `frames`; a column of its own, not hidden.
   */
  cameraMissed: number;
  /** Verdicts received more than once for the same frame. */
  duplicates: number;
  /** `unknown` verdicts among those received. */
  unknown: number;
  /** `good` verdicts without a score under the threshold from a model: must be 0. */
  unscoredGood: number;
  /** Agent processes seen (the sequence number starts again with each). */
  processes: number;
  /** Largest capture-to-line latency seen, ms. */
  maxLatencyMs: number;
}

/** Options of {@link measureAvailability}. */
export interface AvailabilityOptions {
  /** The camera's nominal frame rate. */
  fps: number;
  /** A verdict later than this after capture does not count as available. */
  budgetMs: number;
  /** Only frames captured in [fromMs, toMs) count; frames due in this span without a verdict are lost. */
  fromMs: number;
  toMs: number;
  /** Due times of the slots the camera itself missed (its ledger); default none. */
  cameraMissedAtMs?: readonly number[];
}

/** True when a `good` carries everything a scored frame has: a model, a finite score under its threshold. */
export function isScoredGood(r: FrameResult): boolean {
  return (
    r.model !== null &&
    typeof r.score === 'number' &&
    Number.isFinite(r.score) &&
    typeof r.threshold === 'number' &&
    r.score < r.threshold &&
    r.reason === undefined
  );
}

interface Frame {
  process: number;
  seq: number;
  capturedAtMs: number;
  firstLatencyMs: number;
}

/**
 * Verdict availability of one device's line: verdicts as received (in
 * receipt order, possibly across several agent processes) against the frames
 * the camera took or should have taken in the window. A new agent process is
 * recognised by its sequence number going back with a later capture time.
 */
export function measureAvailability(
  received: readonly LineVerdict[],
  options: AvailabilityOptions,
): Availability {
  const periodMs = 1000 / options.fps;
  const frames: Frame[] = [];
  const byKey = new Map<string, Frame>();
  let process = 0;
  let processMaxSeq = -1;
  let processMaxCapturedMs = Number.NEGATIVE_INFINITY;
  let duplicates = 0;
  let unknown = 0;
  let unscoredGood = 0;
  let maxLatencyMs = 0;
  for (const { result, receivedAtMs } of received) {
    const capturedAtMs = Date.parse(result.capturedAt);
    if (result.seq < processMaxSeq && capturedAtMs > processMaxCapturedMs) {
      process++;
      processMaxSeq = -1;
    }
    processMaxSeq = Math.max(processMaxSeq, result.seq);
    processMaxCapturedMs = Math.max(processMaxCapturedMs, capturedAtMs);
    if (result.verdict === 'good' && !isScoredGood(result)) unscoredGood++;
    if (capturedAtMs < options.fromMs || capturedAtMs >= options.toMs) continue;
    const key = `${process}:${result.seq}`;
    if (byKey.has(key)) {
      duplicates++;
      continue;
    }
    const latencyMs = receivedAtMs - capturedAtMs;
    maxLatencyMs = Math.max(maxLatencyMs, latencyMs);
    if (result.verdict === 'unknown') unknown++;
    const frame = { process, seq: result.seq, capturedAtMs, firstLatencyMs: latencyMs };
    byKey.set(key, frame);
    frames.push(frame);
  }
  frames.sort((a, b) => a.process - b.process || a.seq - b.seq);

  const inBudget = frames.filter((f) => f.firstLatencyMs <= options.budgetMs).length;
  let lostInProcess = 0;
  let lostAgentDown = 0;
  let lostStalled = 0;
  let cameraMissed = 0;
  const missedByCamera = options.cameraMissedAtMs ?? [];
  /** Slots the camera missed itself in the open span (fromMs, toMs). */
  const cameraMissedBetween = (fromMs: number, toMs: number) =>
    missedByCamera.filter((t) => t > fromMs && t < toMs).length;
  /** Frames due in a span of `ms` besides its two ends. */
  const dueBetween = (ms: number) => Math.max(0, Math.floor(ms / periodMs) - 1);
  const first = frames[0];
  const last = frames.at(-1);
  if (first === undefined || last === undefined) {
    lostAgentDown = Math.floor((options.toMs - options.fromMs) / periodMs);
  } else {
    // The window's ends: frames due before the first verdict's frame and after the last one's.
    lostAgentDown += Math.max(0, Math.floor((first.capturedAtMs - options.fromMs) / periodMs));
    lostAgentDown += Math.max(0, Math.floor((options.toMs - last.capturedAtMs) / periodMs) - 1);
    for (let i = 1; i < frames.length; i++) {
      const a = frames[i - 1]!;
      const b = frames[i]!;
      const gapMs = b.capturedAtMs - a.capturedAtMs;
      if (a.process !== b.process) {
        // Frames the new process took before its first verdict at the line are among these.
        lostAgentDown += Math.max(dueBetween(gapMs), b.seq);
        continue;
      }
      const missingSeqs = b.seq - a.seq - 1;
      lostInProcess += missingSeqs;
      if (gapMs > 2 * periodMs) {
        const notTaken = Math.max(0, dueBetween(gapMs) - missingSeqs);
        const camera = Math.min(notTaken, cameraMissedBetween(a.capturedAtMs, b.capturedAtMs));
        cameraMissed += camera;
        lostStalled += notTaken - camera;
      }
    }
  }
  const lost = lostInProcess + lostAgentDown + lostStalled;
  return {
    frames: frames.length + lost,
    inBudget,
    late: frames.length - inBudget,
    lostInProcess,
    lostAgentDown,
    lostStalled,
    cameraMissed,
    duplicates,
    unknown,
    unscoredGood,
    processes: process + 1,
    maxLatencyMs: Math.round(maxLatencyMs),
  };
}

/** Sums the availability of several devices or faults. */
export function sumAvailability(list: readonly Availability[]): Availability {
  const total: Availability = {
    frames: 0,
    inBudget: 0,
    late: 0,
    lostInProcess: 0,
    lostAgentDown: 0,
    lostStalled: 0,
    cameraMissed: 0,
    duplicates: 0,
    unknown: 0,
    unscoredGood: 0,
    processes: 0,
    maxLatencyMs: 0,
  };
  for (const a of list) {
    for (const key of Object.keys(total) as (keyof Availability)[]) {
      if (key === 'maxLatencyMs') total.maxLatencyMs = Math.max(total.maxLatencyMs, a.maxLatencyMs);
      else total[key] += a[key];
    }
  }
  return total;
}

/** The share of frames with a verdict in budget, e.g. 0.9999. */
export function availabilityShare(a: Availability): number {
  return a.frames === 0 ? 1 : a.inBudget / a.frames;
}
