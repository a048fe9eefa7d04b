import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { EdgeDataStore, EdgeTable } from './edge-data-store.ts';

/** Days each edge-data table keeps its rows. */
export type EdgeRetentionDays = Record<EdgeTable, number>;

/** Options of the retention job. */
export interface EdgeRetentionOptions {
  store: EdgeDataStore;
  days: EdgeRetentionDays;
  /** node-cron expression of when it runs (default: every hour at minute 17). */
  schedule?: string;
  logger: Logger;
  /** Removes a sample's image from object storage before its index row goes. */
  deleteBlob?: (key: string) => Promise<void>;
  /**
   * Objects to keep past retention (the images of labelled samples, which
   * retraining and exports read); their index rows still go.
   */
  keepBlob?: (key: string) => boolean;
}

/** Deletes edge data past each table's retention on a node-cron schedule. */
export class EdgeRetention {
  readonly #o: EdgeRetentionOptions;
  #task: ScheduledTask | undefined;

  constructor(options: EdgeRetentionOptions) {
    this.#o = options;
  }

  /** Schedules the job. */
  start(): void {
    this.#task = cron.schedule(this.#o.schedule ?? '17 * * * *', async () => {
      try {
        await this.deleteExpiredBlobs();
        this.enforce();
      } catch (err) {
        this.#o.logger.error({ err }, 'edge-data retention failed');
      }
    });
  }

  /**
   * Removes from object storage the images of samples past retention, except
   * those `keepBlob` keeps (their rows go in enforce()); returns how many went.
   */
  async deleteExpiredBlobs(nowMs = Date.now()): Promise<number> {
    const deleteBlob = this.#o.deleteBlob;
    if (deleteBlob === undefined) return 0;
    const keep = this.#o.keepBlob ?? (() => false);
    let deleted = 0;
    // Every expired sample, page by page: enforce() then deletes all their rows.
    for (const page of this.#o.store.sampleKeysOlderThan(
      nowMs - this.#o.days.samples * 86_400_000,
    )) {
      for (const key of page) {
        if (keep(key)) continue;
        await deleteBlob(key);
        deleted++;
      }
    }
    return deleted;
  }

  /** Deletes what is past retention now; returns the rows deleted per table. */
  enforce(nowMs = Date.now()): Record<EdgeTable, number> {
    const deleted = {} as Record<EdgeTable, number>;
    for (const [table, days] of Object.entries(this.#o.days) as [EdgeTable, number][])
      deleted[table] = this.#o.store.deleteOlderThan(table, nowMs - days * 86_400_000);
    const total = Object.values(deleted).reduce((a, b) => a + b, 0);
    if (total > 0) this.#o.logger.info({ deleted }, 'edge-data retention deleted old rows');
    return deleted;
  }

  /** Stops the schedule; idempotent. */
  async close(): Promise<void> {
    await this.#task?.destroy();
    this.#task = undefined;
  }
}
