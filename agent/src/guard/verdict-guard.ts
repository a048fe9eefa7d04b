import type { Logger } from 'pino';
import { describeError, type FrameCounters, type FrameResult } from '@linesight/protocol';
import type { Frame, FrameSink } from '../camera/camera.ts';
import { unscoredResult } from '../pipeline/unscored-result.ts';
import type { HandoverEntry } from './guard-protocol.ts';

/** Options of a verdict guard. */
export interface VerdictGuardOptions {
  deviceId: string;
  /** A frame the worker has not answered this long after it arrived is answered `unknown`. */
  budgetMs: number;
  /** Writes one verdict to the line (the local outputs); called in frame order. */
  publish: (result: FrameResult) => void;
  /** Hands a frame to the running worker. */
  send: (frame: Frame) => void;
  onCameraError: (err: unknown) => void;
  /**
   * Unknowns told to the line that no worker recorded (while none ran, or
   * pending when one exited) kept for the next worker's verdict log; beyond
   * this many the oldest are dropped and counted.
   */
  handoverMax: number;
  /**
   * Frames the worker holds unanswered (pending, or answered by timeout and not yet
   * back) beyond which new frames are not sent to it but answered `unknown` at once:
   * a frozen or far too slow worker must not pile frames up in the channel.
   */
  maxBehind: number;
  /**
   * Hands one of the guard's unknowns to the running worker for its verdict log;
   * false when it could not (the unknown is then kept for the next worker).
   */
  recordLive?: (entry: HandoverEntry) => boolean;
  logger: Logger;
}

/** What the guard counted, over its whole life (worker restarts included). */
export interface VerdictGuardCounters {
  /** Verdicts written to the line, by kind; `frames` is what the camera delivered. */
  frames: FrameCounters;
  /** Frames answered `unknown` because no worker was running. */
  unknownNoWorker: number;
  /** Frames answered `unknown` because the worker did not answer within the budget. */
  unknownTimeout: number;
  /** Frames answered `unknown` without being sent: the worker was `maxBehind` frames behind. */
  unknownBehind: number;
  /** Frames still pending when their worker exited, answered `unknown`. */
  unknownWorkerExit: number;
  /** Worker results that came after the guard had answered their frame (not written again). */
  lateResults: number;
  /** Worker results for frames the guard never sent or already forgot (not written). */
  strayResults: number;
  /** Unknowns dropped from the hand-over list because it was full. */
  handoverDropped: number;
}

interface Pending {
  frame: Frame;
  arrivedAtMs: number;
}

/** At most this many answered-by-timeout frames wait for their late result from a live worker. */
const LATE_WATCH_MAX = 10_000;

/**
 * The line guard's promise to the line: every camera frame gets exactly one
 * verdict, in frame order, within `budgetMs` of its arrival. Frames go to the
 * worker while one runs; its result is written when it comes back in time.
 * A frame is answered `unknown` (no model, no score, a reason) when no worker
 * runs (`agent-restarting: ...`), when the worker has not answered in time
 * (`agent-timeout: ...`) and when its worker exits first; never `good`
 * without the worker's score. A result that comes back after its frame was
 * answered is counted, not written. Unknowns no worker recorded are kept
 * (bounded) for the next worker's verdict log ({@link takeHandover}).
 * Pending frames are bounded by the budget (the oldest is answered when its
 * time is up), so memory is at most the frames of one budget.
 */
export class VerdictGuard implements FrameSink {
  readonly #o: VerdictGuardOptions;
  /** Frames sent to the worker and not yet answered, oldest first (ascending seq). */
  readonly #pending: Pending[] = [];
  /** Frames answered by timeout whose result the live worker may still send (it records them). */
  readonly #lateWatch = new Map<number, FrameResult>();
  #handover: HandoverEntry[] = [];
  #worker: number | undefined;
  #downReason = 'worker starting';
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #idle: (() => void)[] = [];
  readonly counters: VerdictGuardCounters = {
    frames: { captured: 0, scored: 0, unknown: 0, droppedOverload: 0, defects: 0 },
    unknownNoWorker: 0,
    unknownTimeout: 0,
    unknownBehind: 0,
    unknownWorkerExit: 0,
    lateResults: 0,
    strayResults: 0,
    handoverDropped: 0,
  };

  constructor(options: VerdictGuardOptions) {
    this.#o = options;
  }

  /** The pid of the worker frames go to, while one is up. */
  get workerPid(): number | undefined {
    return this.#worker;
  }

  /** Frames sent to the worker and not answered yet. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Resolves once no frame is pending (each is answered within the budget at the latest). */
  drain(): Promise<void> {
    if (this.#pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Unknowns waiting to be handed to the next worker. */
  get handoverSize(): number {
    return this.#handover.length;
  }

  frame(frame: Frame): void {
    this.counters.frames.captured++;
    if (this.#closed) {
      this.#answerUnknown(frame, Date.now(), 'agent-stopping: the agent is shutting down');
      return;
    }
    if (this.#worker === undefined) {
      this.counters.unknownNoWorker++;
      const result = this.#answerUnknown(
        frame,
        Date.now(),
        `agent-restarting: ${this.#downReason}`,
      );
      this.#keep(result);
      return;
    }
    const behind = this.#pending.length + this.#lateWatch.size;
    if (behind >= this.#o.maxBehind) {
      this.counters.unknownBehind++;
      this.#keep(
        this.#answerUnknown(
          frame,
          Date.now(),
          `agent-timeout: the scoring process is ${behind} frames behind`,
        ),
      );
      return;
    }
    this.#pending.push({ frame, arrivedAtMs: Date.now() });
    try {
      this.#o.send(frame);
    } catch (err) {
      // The channel just broke: the frame stays pending; the exit answers it.
      this.#o.logger.warn(
        { seq: frame.seq, err: describeError(err) },
        'frame not sent to the worker',
      );
    }
    this.#arm();
  }

  error(err: unknown): void {
    this.#o.onCameraError(err);
  }

  /** A worker is up and takes frames from now on. */
  workerUp(pid: number): void {
    this.#worker = pid;
  }

  /** One result from the worker (it sends them in frame order). */
  workerResult(result: FrameResult): void {
    const head = this.#pending[0];
    if (head === undefined || result.seq < head.frame.seq) {
      if (this.#lateWatch.delete(result.seq)) this.counters.lateResults++;
      else this.counters.strayResults++;
      return;
    }
    const index = this.#pending.findIndex((p) => p.frame.seq === result.seq);
    if (index < 0) {
      this.counters.strayResults++;
      return;
    }
    // Results come in frame order: frames ahead of this one will get none.
    for (const skipped of this.#pending.splice(0, index)) {
      this.counters.unknownWorkerExit++;
      this.#keep(
        this.#answerUnknown(
          skipped.frame,
          skipped.arrivedAtMs,
          'agent-lost: the worker answered a later frame first',
        ),
      );
    }
    this.#pending.shift();
    this.#write(result);
    this.#arm();
  }

  /**
   * The worker is gone (exited, or its channel closed): every pending frame
   * is answered `unknown` at once, in order, and frames are answered
   * `unknown` with `reason` until the next {@link workerUp}.
   */
  workerDown(reason: string): void {
    const gone = this.#worker;
    this.#worker = undefined;
    this.#downReason = reason;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // The worker had these frames: it may have recorded some before it died (the next
    // worker checks its rows), as it may have with the ones answered by timeout.
    for (const p of this.#pending.splice(0)) {
      this.counters.unknownWorkerExit++;
      this.#keep(this.#answerUnknown(p.frame, p.arrivedAtMs, `agent-restarting: ${reason}`), gone);
    }
    for (const result of this.#lateWatch.values()) this.#keep(result, gone);
    this.#lateWatch.clear();
    this.#arm();
  }

  /** The unknowns no worker recorded, oldest first; the list is emptied. */
  takeHandover(): HandoverEntry[] {
    const out = this.#handover;
    this.#handover = [];
    return out;
  }

  /** Puts unknowns back at the front of the hand-over list (a worker that could not take them). */
  giveBack(entries: readonly HandoverEntry[]): void {
    this.#handover = [...entries, ...this.#handover];
    this.#trimHandover();
  }

  /** Answers every pending frame `unknown` and every later frame at once; idempotent. */
  close(reason = 'agent-stopping: the agent is shutting down'): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const p of this.#pending.splice(0)) {
      this.counters.unknownWorkerExit++;
      this.#keep(this.#answerUnknown(p.frame, p.arrivedAtMs, reason), this.#worker);
    }
    this.#arm();
  }

  /** One timer, for the oldest pending frame: later frames' deadlines are later. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const head = this.#pending[0];
    if (head === undefined) {
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    const waitMs = Math.max(0, head.arrivedAtMs + this.#o.budgetMs - Date.now());
    this.#timer = setTimeout(() => this.#expire(), waitMs);
  }

  #expire(): void {
    this.#timer = undefined;
    const now = Date.now();
    while (this.#pending.length > 0 && this.#pending[0]!.arrivedAtMs + this.#o.budgetMs <= now) {
      const p = this.#pending.shift()!;
      this.counters.unknownTimeout++;
      const result = this.#answerUnknown(
        p.frame,
        p.arrivedAtMs,
        `agent-timeout: no verdict from the scoring process within ${this.#o.budgetMs} ms`,
      );
      this.#lateWatch.set(p.frame.seq, result);
      if (this.#lateWatch.size > LATE_WATCH_MAX) {
        const oldest = this.#lateWatch.keys().next().value as number;
        const lost = this.#lateWatch.get(oldest);
        this.#lateWatch.delete(oldest);
        if (lost !== undefined) this.#keep(lost, this.#worker);
      }
    }
    this.#arm();
  }

  #answerUnknown(frame: Frame, arrivedAtMs: number, reason: string): FrameResult {
    const now = Date.now();
    const totalMs = Math.max(0, now - arrivedAtMs);
    const result = unscoredResult({
      deviceId: this.#o.deviceId,
      seq: frame.seq,
      capturedAt: frame.capturedAt,
      reason,
      captureMs: Math.max(0, arrivedAtMs - frame.capturedAt.getTime()),
      waitedMs: totalMs,
    });
    this.#write(result);
    return result;
  }

  #write(result: FrameResult): void {
    const f = this.counters.frames;
    if (result.verdict === 'unknown') {
      if (result.reason?.startsWith('overload:') === true) f.droppedOverload++;
      else f.unknown++;
    } else {
      f.scored++;
      if (result.verdict === 'defect') f.defects++;
    }
    try {
      this.#o.publish(result);
    } catch (err) {
      this.#o.logger.error(
        { seq: result.seq, err: describeError(err) },
        'verdict could not be handed to the outputs',
      );
    }
  }

  /**
   * An unknown no worker recorded: to the running worker's verdict log, else kept for the
   * next. `sentToPid`: the worker that had the frame and may have recorded it itself.
   */
  #keep(result: FrameResult, sentToPid?: number): void {
    const entry: HandoverEntry = sentToPid === undefined ? { result } : { result, sentToPid };
    if (this.#worker !== undefined && this.#o.recordLive?.(entry) === true) return;
    this.#handover.push(entry);
    this.#trimHandover();
  }

  #trimHandover(): void {
    const over = this.#handover.length - this.#o.handoverMax;
    if (over > 0) {
      this.#handover.splice(0, over);
      this.counters.handoverDropped += over;
    }
  }
}
