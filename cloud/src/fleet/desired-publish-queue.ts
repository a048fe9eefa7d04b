import type { Logger } from 'pino';
import {
  backoffDelayMs,
  describeError,
  withDeadline,
  type DesiredState,
} from '@linesight/protocol';

/** Options of a desired-state publish queue. */
export interface DesiredPublishQueueOptions {
  /** Publishes one document (retained, QoS 1); resolves on its PUBACK. */
  publish: (doc: DesiredState) => Promise<void>;
  /** Resolves when the next publish may start (a PublishPacer's take); none: at once. */
  pace?: () => Promise<void>;
  /** The device's stored document now, queued again after a failure (default: the failed one). */
  latest?: (deviceId: string) => DesiredState | undefined;
  /** Publishes awaiting their PUBACK at once. */
  maxInFlight: number;
  /** A publish without its PUBACK after this long counts as failed and is queued again. */
  publishTimeoutMs?: number;
  /** First wait after a failed publish; doubles per failure in a row (with jitter) up to maxRetryDelayMs. */
  minRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  logger: Logger;
  /** Waits `ms` (tests); must resolve early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** 0..1 (tests). */
  random?: () => number;
}

/** How far the queue is: documents waiting or in flight, and totals since start. */
export interface DesiredPublishStats {
  waiting: number;
  inFlight: number;
  published: number;
  failed: number;
}

/**
 * Publishes stored desired-state documents in the background, paced, at most
 * `maxInFlight` awaiting their PUBACK, in the order they were queued. One entry
 * per device: queuing a newer document for a device still waiting replaces the
 * older one in its place, so a rollback queued behind a wave sends each device
 * only its latest state. A failed or timed-out publish is queued again after a
 * capped, jittered backoff, so a broker outage delays publishes and loses none.
 * The queue holds at most one document per device (bounded by the fleet).
 * The documents are stored before they are queued, and the cloud republishes
 * every stored one at start: a restart mid-publish still reaches every device.
 */
export class DesiredPublishQueue {
  readonly #o: DesiredPublishQueueOptions;
  /** Waiting documents by device id, in queue order. */
  readonly #waiting = new Map<string, DesiredState>();
  /** Publishes in flight, per device id (a device may have an older one still in flight). */
  readonly #inFlight = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  readonly #idleWaiters: (() => void)[] = [];
  #loop: Promise<void> | undefined;
  #failuresInRow = 0;
  #published = 0;
  #failed = 0;

  constructor(options: DesiredPublishQueueOptions) {
    if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1)
      throw new RangeError(`maxInFlight must be a positive integer, not ${options.maxInFlight}`);
    this.#o = options;
  }

  /** Queues documents to publish (each replaces a waiting one of the same device); returns at once. */
  enqueue(docs: Iterable<DesiredState>): void {
    if (this.#stop.signal.aborted) return;
    for (const doc of docs) this.#waiting.set(doc.deviceId, doc);
    if (this.#waiting.size > 0) this.#loop ??= this.#drain();
  }

  /** True while a document of `deviceId` waits or is in flight. */
  isPending(deviceId: string): boolean {
    return this.#waiting.has(deviceId) || this.#inFlight.has(deviceId);
  }

  /** How many of `deviceIds` have a document waiting or in flight. */
  countPending(deviceIds: Iterable<string>): number {
    let n = 0;
    for (const id of deviceIds) if (this.isPending(id)) n++;
    return n;
  }

  /** Counts for metrics and logs. */
  stats(): DesiredPublishStats {
    let inFlight = 0;
    for (const n of this.#inFlight.values()) inFlight += n;
    return {
      waiting: this.#waiting.size,
      inFlight,
      published: this.#published,
      failed: this.#failed,
    };
  }

  /** Drops the waiting document of `deviceId` (a newer one is being published directly). */
  forget(deviceId: string): void {
    this.#waiting.delete(deviceId);
  }

  /** Resolves once nothing waits and nothing is in flight (or the queue closed). */
  idle(): Promise<void> {
    if (this.#loop === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops publishing: nothing new starts, and publishes in flight are left to
   * the link's close. What was not acknowledged is stored and republished at
   * the next start. Idempotent.
   */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #drain(): Promise<void> {
    const signal = this.#stop.signal;
    // One listener per loop, removed when the loop ends: the signal lives as long as the queue.
    let onAbort = () => {};
    const stopped = new Promise<void>((resolve) => {
      onAbort = () => resolve();
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      while (!signal.aborted && this.#waiting.size > 0) {
        if (this.#failuresInRow > 0) await this.#sleep(this.#retryDelayMs(), signal);
        if (this.#o.pace !== undefined) await Promise.race([this.#o.pace(), stopped]);
        if (signal.aborted) break;
        // Taken after the pacer's turn: a newer document queued meanwhile is the one sent.
        const first = this.#waiting.entries().next();
        if (first.done === true) break;
        const [deviceId, doc] = first.value;
        this.#waiting.delete(deviceId);
        this.#start(deviceId, doc);
        if (this.#running.size >= this.#o.maxInFlight)
          await Promise.race([...this.#running, stopped]);
      }
      await Promise.race([Promise.all(this.#running), stopped]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#loop = undefined;
      // Work queued while the last publishes settled starts a new loop.
      if (this.#waiting.size > 0 && !signal.aborted) this.#loop = this.#drain();
      else for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  #start(deviceId: string, doc: DesiredState): void {
    this.#inFlight.set(deviceId, (this.#inFlight.get(deviceId) ?? 0) + 1);
    const p: Promise<void> = this.#publishWithTimeout(doc).then(
      () => {
        this.#published++;
        this.#failuresInRow = 0;
      },
      (err: unknown) => {
        this.#failed++;
        this.#failuresInRow++;
        // Unless a newer document is already waiting, the device's stored one goes again.
        if (!this.#waiting.has(deviceId) && !this.#stop.signal.aborted)
          this.#waiting.set(deviceId, this.#o.latest?.(deviceId) ?? doc);
        if (this.#failuresInRow === 1 || this.#failuresInRow % 100 === 0)
          this.#o.logger.warn(
            {
              err: describeError(err),
              device: deviceId,
              failuresInRow: this.#failuresInRow,
              waiting: this.#waiting.size,
            },
            'desired-state publish failed; queued again, will retry',
          );
      },
    );
    const settled = p.finally(() => {
      this.#running.delete(settled);
      const n = (this.#inFlight.get(deviceId) ?? 1) - 1;
      if (n > 0) this.#inFlight.set(deviceId, n);
      else this.#inFlight.delete(deviceId);
    });
    this.#running.add(settled);
  }

  async #publishWithTimeout(doc: DesiredState): Promise<void> {
    const timeoutMs = this.#o.publishTimeoutMs;
    if (timeoutMs === undefined) return this.#o.publish(doc);
    await withDeadline(this.#o.publish(doc), timeoutMs, 'no PUBACK');
  }

  #retryDelayMs(): number {
    return backoffDelayMs(
      this.#failuresInRow - 1,
      this.#o.minRetryDelayMs ?? 500,
      this.#o.maxRetryDelayMs ?? 30_000,
      (this.#o.random ?? Math.random)(),
    );
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#o.sleep !== undefined) return this.#o.sleep(ms, signal);
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
