import type { Logger } from 'pino';
import { backoffDelayMs } from '@linesight/protocol';
import type { DriftAlert } from './alert-store.ts';

/** What the webhook receives (JSON body of the POST). */
export interface AlertNotification {
  schema: 'linesight.alert/v1';
  event: 'opened' | 'resolved';
  alert: DriftAlert;
}

/** Options of the webhook notifier. */
export interface WebhookNotifierOptions {
  url: string;
  /** Attempts after the first one (default 3). */
  retries?: number;
  timeoutMs?: number;
  /** Notifications waiting at most; beyond, the oldest is dropped and counted (default 1000). */
  maxQueue?: number;
  /** First retry delay; doubles per attempt, capped at 30 s, with jitter (default 1000). */
  baseDelayMs?: number;
  logger: Logger;
}

/** Counters of the notifier. */
export interface WebhookStats {
  sent: number;
  failed: number;
  dropped: number;
  queued: number;
}

/**
 * POSTs alert notifications to a webhook, one at a time in order, with
 * bounded retries (capped exponential backoff with jitter). `notify()` only
 * queues, so the drift job never waits on the receiver; the queue is bounded
 * and drops the oldest notification when full.
 */
export class WebhookNotifier {
  readonly #o: Required<Omit<WebhookNotifierOptions, 'logger'>> & { logger: Logger };
  readonly #queue: AlertNotification[] = [];
  readonly #stats = { sent: 0, failed: 0, dropped: 0 };
  #draining: Promise<void> | undefined;
  #closed = false;
  #abort = new AbortController();
  #idle: (() => void)[] = [];

  constructor(options: WebhookNotifierOptions) {
    this.#o = {
      retries: 3,
      timeoutMs: 5000,
      maxQueue: 1000,
      baseDelayMs: 1000,
      ...options,
    };
  }

  /** Counters so far. */
  get stats(): WebhookStats {
    return { ...this.#stats, queued: this.#queue.length };
  }

  /** Queues a notification; returns at once. */
  notify(notification: AlertNotification): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#o.maxQueue) {
      this.#queue.shift();
      this.#stats.dropped++;
    }
    this.#queue.push(notification);
    this.#kick();
  }

  #kick(): void {
    if (this.#draining !== undefined) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      // A notification queued between the last shift and here starts the next drain.
      if (this.#queue.length > 0 && !this.#closed) this.#kick();
      else for (const resolve of this.#idle.splice(0)) resolve();
    });
  }

  /** Resolves when every queued notification was sent or given up (for tests and shutdown). */
  idle(): Promise<void> {
    if (this.#draining === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    while (!this.#closed) {
      const next = this.#queue.shift();
      if (next === undefined) return;
      await this.#deliver(next);
    }
  }

  async #deliver(n: AlertNotification): Promise<void> {
    const body = JSON.stringify(n);
    for (let attempt = 0; attempt <= this.#o.retries && !this.#closed; attempt++) {
      if (attempt > 0) {
        const delayMs = backoffDelayMs(attempt - 1, this.#o.baseDelayMs, 30_000, Math.random());
        if (!(await this.#sleep(delayMs))) break;
      }
      try {
        const res = await fetch(this.#o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#o.timeoutMs)]),
        });
        await res.body?.cancel();
        if (res.ok) {
          this.#stats.sent++;
          return;
        }
        this.#o.logger.warn(
          { status: res.status, attempt: attempt + 1, alertId: n.alert.id },
          'alert webhook answered with an error status',
        );
      } catch (err) {
        if (this.#closed) break;
        this.#o.logger.warn(
          { err, attempt: attempt + 1, alertId: n.alert.id },
          'alert webhook unreachable',
        );
      }
    }
    this.#stats.failed++;
    this.#o.logger.error(
      { alertId: n.alert.id, event: n.event, attempts: this.#o.retries + 1 },
      'alert webhook gave up on a notification',
    );
  }

  // Resolves true after `ms`, false at once when closed.
  #sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#closed) return resolve(false);
      const timer = setTimeout(() => {
        this.#abort.signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops retrying, aborts a request in flight and drops what waits (counted); idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#stats.dropped += this.#queue.length;
      this.#queue.length = 0;
      this.#abort.abort();
    }
    await this.#draining;
  }
}
