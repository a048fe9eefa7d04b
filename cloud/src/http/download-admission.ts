import type { Logger } from 'pino';
import { LinesightError } from '@linesight/protocol';
import type { MetricSample } from '../metrics.ts';

/** Options of the artifact download admission. */
export interface DownloadAdmissionOptions {
  /** Artifact downloads streamed at once; more are refused with ERR_CLOUD_BUSY. */
  max: number;
  logger: Logger;
  /** Longest Retry-After handed out (default 300 s). */
  maxRetryAfterSec?: number;
  /** At most one log line about deferrals in this long (default 10 s). */
  logIntervalMs?: number;
  /** Callers remembered as waiting (default 100,000); beyond it the longest-waiting one is forgotten. */
  maxWaiting?: number;
  /** Longest download time one finished download adds to the slot-time estimate (default 60 s). */
  maxHoldSampleSec?: number;
  /** Clock (tests). */
  nowMs?: () => number;
}

/**
 * ERR_CLOUD_BUSY whose Retry-After is chosen by its thrower, and whose refusals
 * the thrower logs itself (the error handler then adds no line per request).
 */
export class BusyError extends LinesightError {
  readonly retryAfterSec: number;

  constructor(message: string, retryAfterSec: number, details: Record<string, unknown>) {
    super('ERR_CLOUD_BUSY', message, { details: { ...details, retryAfterSec } });
    this.name = 'BusyError';
    this.retryAfterSec = retryAfterSec;
  }
}

/**
 * What a slot's duration starts from before any download finished: a guess (a
 * small model on a LAN), replaced by measurements as downloads finish.
 */
const INITIAL_HOLD_SEC = 0.1;
/**
 * Half-life of the slot-time estimate: the weight of a finished download in the
 * estimate grows with the time since the one before, so a long quiet spell (devices
 * sleeping on their Retry-After) makes the next downloads replace what a burst measured.
 */
const HOLD_HALF_LIFE_MS = 10_000;
/** Least weight of a download in the estimate (downloads finishing back to back). */
const HOLD_MIN_WEIGHT = 0.05;

/**
 * Weight of a download finished `sinceLastMs` after the one before in the slot-time
 * estimate: 1 - 2^(-gap / half-life), at least HOLD_MIN_WEIGHT. A burst of downloads
 * finishing together moves the estimate a little each (and all of them together as far
 * as needed), one after ten quiet seconds counts half, one after a minute replaces it.
 */
export function holdSampleWeight(sinceLastMs: number): number {
  return Math.max(HOLD_MIN_WEIGHT, 1 - 2 ** (-Math.max(0, sinceLastMs) / HOLD_HALF_LIFE_MS));
}

/**
 * Admission of artifact downloads: at most `max` stream at once. A caller
 * beyond that is refused at once (BusyError, 503) with a Retry-After that
 * grows with the callers waiting: the time the slots need to serve everyone
 * refused before it (callers waiting x average download time / slots), so a
 * whole fleet told to update spreads its downloads over that time instead of
 * timing out together. The average slot time forgets a burst: a download's
 * weight in it grows with the quiet time before it (half-life 10 s), so the
 * event-loop lag of a first burst, which makes every slot of it look slow, is
 * not handed out as the wait of devices asking after it has passed; one
 * download counts at most 60 s (a client stalled for minutes is not the
 * norm). A caller counts as waiting from its refusal until it
 * gets a slot, or until twice the longest Retry-After has passed without it
 * coming back. Deferrals are counted for /metrics and logged at most once
 * every 10 s with the count.
 */
export class DownloadAdmission {
  readonly max: number;
  readonly #maxRetryAfterSec: number;
  readonly #logIntervalMs: number;
  readonly #maxWaiting: number;
  readonly #maxHoldSampleSec: number;
  readonly #now: () => number;
  readonly #log: Logger;
  #inUse = 0;
  #deferred = 0;
  #served = 0;
  /** Time-decayed average of how long a slot is held, in seconds. */
  #holdSec = INITIAL_HOLD_SEC;
  /** When the last download ended (or the admission was made): the gap weighs the next one. */
  #lastHoldEndMs: number;
  /** Caller -> when it was last refused; insertion order is refusal order (re-inserted on each). */
  readonly #waiting = new Map<string, number>();
  #lastLogMs: number | undefined;
  #deferredSinceLog = 0;
  #longestRetryAfterSinceLog = 0;

  constructor(options: DownloadAdmissionOptions) {
    this.max = options.max;
    this.#maxRetryAfterSec = options.maxRetryAfterSec ?? 300;
    this.#logIntervalMs = options.logIntervalMs ?? 10_000;
    this.#maxWaiting = options.maxWaiting ?? 100_000;
    this.#maxHoldSampleSec = options.maxHoldSampleSec ?? 60;
    this.#now = options.nowMs ?? Date.now;
    this.#log = options.logger;
    this.#lastHoldEndMs = this.#now();
  }

  /**
   * Takes a slot for `caller` (a device id, or a token's actor); returns its
   * release function (idempotent: call it on every end of the stream). Throws
   * BusyError when all slots are taken.
   */
  admit(caller: string): () => void {
    const now = this.#now();
    this.#forgetStale(now);
    if (this.#inUse >= this.max) throw this.#refuse(caller, now);
    this.#waiting.delete(caller);
    this.#inUse++;
    const startedMs = now;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse--;
      this.#served++;
      const endedMs = this.#now();
      const heldSec = Math.min(this.#maxHoldSampleSec, Math.max(0, endedMs - startedMs) / 1000);
      this.#holdSec += holdSampleWeight(endedMs - this.#lastHoldEndMs) * (heldSec - this.#holdSec);
      this.#lastHoldEndMs = Math.max(this.#lastHoldEndMs, endedMs);
    };
  }

  #refuse(caller: string, now: number): BusyError {
    this.#deferred++;
    // Re-inserted: the map stays in order of the latest refusal.
    this.#waiting.delete(caller);
    this.#waiting.set(caller, now);
    if (this.#waiting.size > this.#maxWaiting) {
      const oldest = this.#waiting.keys().next();
      if (oldest.done !== true) this.#waiting.delete(oldest.value);
    }
    const waiting = this.#waiting.size;
    const retryAfterSec = this.retryAfterSec(waiting);
    this.#noteForLog(now, retryAfterSec);
    return new BusyError(
      `${this.max} artifact downloads are in progress, the most the cloud streams at once (cloud config artifactDownloadConcurrency); ${waiting} callers are waiting: retry after ${retryAfterSec} s`,
      retryAfterSec,
      { inProgress: this.#inUse, max: this.max, waiting },
    );
  }

  /** Seconds the `waiting`-th caller in line should wait: its share of the slots' time, at least 1 s, at most the cap. */
  retryAfterSec(waiting: number): number {
    const sec = Math.ceil((waiting * this.#holdSec) / this.max);
    return Math.min(this.#maxRetryAfterSec, Math.max(1, sec));
  }

  /** Drops callers refused so long ago that they are not coming back soon (gone, or served elsewhere). */
  #forgetStale(now: number): void {
    const staleBefore = now - 2 * this.#maxRetryAfterSec * 1000;
    for (const [caller, refusedMs] of this.#waiting) {
      if (refusedMs >= staleBefore) break;
      this.#waiting.delete(caller);
    }
  }

  #noteForLog(now: number, retryAfterSec: number): void {
    this.#deferredSinceLog++;
    this.#longestRetryAfterSinceLog = Math.max(this.#longestRetryAfterSinceLog, retryAfterSec);
    if (this.#lastLogMs !== undefined && now - this.#lastLogMs < this.#logIntervalMs) return;
    this.#log.warn(
      {
        event: 'artifact_download.deferred',
        deferred: this.#deferredSinceLog,
        sinceSec: this.#lastLogMs === undefined ? 0 : Math.round((now - this.#lastLogMs) / 1000),
        inProgress: this.#inUse,
        max: this.max,
        waiting: this.#waiting.size,
        longestRetryAfterSec: this.#longestRetryAfterSinceLog,
      },
      'artifact downloads deferred: all download slots busy, callers told to retry later',
    );
    this.#lastLogMs = now;
    this.#deferredSinceLog = 0;
    this.#longestRetryAfterSinceLog = 0;
  }

  /** Slots in use, callers waiting, downloads deferred and served so far, average slot time. */
  get stats(): {
    inUse: number;
    waiting: number;
    deferred: number;
    served: number;
    averageHoldSec: number;
  } {
    return {
      inUse: this.#inUse,
      waiting: this.#waiting.size,
      deferred: this.#deferred,
      served: this.#served,
      averageHoldSec: this.#holdSec,
    };
  }

  /** Prometheus samples: deferrals (counter), downloads in progress and callers waiting (gauges). */
  metrics(): MetricSample[] {
    const s = this.stats;
    return [
      {
        name: 'linesight_artifact_downloads_deferred_total',
        help: 'artifact downloads refused with 503 and Retry-After because all download slots were busy',
        type: 'counter',
        values: [{ value: s.deferred }],
      },
      {
        name: 'linesight_artifact_downloads_in_progress',
        help: 'artifact downloads being streamed now (at most artifactDownloadConcurrency)',
        type: 'gauge',
        values: [{ value: s.inUse }],
      },
      {
        name: 'linesight_artifact_downloads_waiting',
        help: 'callers refused a download slot that have not had one since (told to retry later)',
        type: 'gauge',
        values: [{ value: s.waiting }],
      },
    ];
  }
}
