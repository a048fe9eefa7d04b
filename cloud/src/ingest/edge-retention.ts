import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { BlobListEntry, BlobStore } from '../blobs/blob-store.ts';
import type { MetricSample } from '../metrics.ts';
import type { EdgeDataStore, EdgeTable } from './edge-data-store.ts';

/** Days each edge-data table keeps its rows. */
export type EdgeRetentionDays = Record<EdgeTable, number>;

/** Where devices upload sample images and anomaly maps: `samples/<deviceId>/<name>`. */
export const SAMPLES_PREFIX = 'samples/';

/** Default hours an object no index row names is left alone (docs/edge-data.md says why). */
export const DEFAULT_ORPHAN_GRACE_HOURS = 24;

/** Options of the retention job. */
export interface EdgeRetentionOptions {
  store: EdgeDataStore;
  days: EdgeRetentionDays;
  /** node-cron expression of when it runs (default: every hour at minute 17). */
  schedule?: string;
  logger: Logger;
  /**
   * Object storage: the images of samples past retention are deleted from it,
   * and the sweep deletes objects under `samples/` that no index row names.
   * Without it objects are left alone.
   */
  blobs?: Pick<BlobStore, 'list' | 'delete'>;
  /**
   * Which of these objects to keep past retention and out of the sweep (the
   * images of labelled samples, which retraining and exports read, though
   * their index rows go). Asked a page of keys at a time.
   */
  keptObjects?: (keys: readonly string[]) => ReadonlySet<string>;
  /** Hours an object under `samples/` that no index row names is left alone (default 24). */
  orphanGraceHours?: number;
  /** node-cron expression of when the orphan sweep runs (default: daily at 02:43). */
  orphanSchedule?: string;
  /**
   * Whether a device is registered. The objects of a removed device go once
   * past the grace; a registered one's wait until it has moved on (see sweepOrphans).
   */
  knownDevice?: (deviceId: string) => boolean;
  /** Objects listed and checked against the index at a time (default 1000). */
  orphanPageSize?: number;
}

/** What one orphan sweep did. */
export interface OrphanSweepResult {
  /** Objects listed under `samples/`. */
  listed: number;
  /** Orphans deleted. */
  deleted: number;
  /** Objects no row names, past the grace, kept because their device may still send the row. */
  waiting: number;
}

/** Deletes edge data past each table's retention, and orphaned sample objects, on node-cron schedules. */
export class EdgeRetention {
  readonly #o: EdgeRetentionOptions;
  #tasks: ScheduledTask[] = [];
  #sweeping: Promise<OrphanSweepResult> | undefined;
  #closed = false;
  readonly #deleted = { expired: 0, orphan: 0 };
  readonly #sweeps = { ok: 0, failed: 0 };

  constructor(options: EdgeRetentionOptions) {
    this.#o = options;
  }

  /** Schedules the job. */
  start(): void {
    this.#tasks.push(
      cron.schedule(this.#o.schedule ?? '17 * * * *', async () => {
        try {
          await this.deleteExpiredBlobs();
          this.enforce();
        } catch (err) {
          this.#o.logger.error({ err }, 'edge-data retention failed');
        }
      }),
    );
    if (this.#o.blobs !== undefined)
      this.#tasks.push(
        cron.schedule(this.#o.orphanSchedule ?? '43 2 * * *', async () => {
          try {
            await this.sweepOrphans();
          } catch (err) {
            // On S3 the likeliest cause is a policy without s3:ListBucket (docs/storage.md).
            this.#o.logger.error({ err }, 'orphaned-object sweep failed');
          }
        }),
      );
  }

  /**
   * Removes from object storage the images of samples past retention, except
   * those `keptObjects` keeps (their rows go in enforce()); returns how many went.
   */
  async deleteExpiredBlobs(nowMs = Date.now()): Promise<number> {
    const blobs = this.#o.blobs;
    if (blobs === undefined) return 0;
    let deleted = 0;
    // Every expired sample, page by page: enforce() then deletes all their rows.
    for (const page of this.#o.store.sampleKeysOlderThan(
      nowMs - this.#o.days.samples * 86_400_000,
    )) {
      const kept = this.#o.keptObjects?.(page);
      for (const key of page) {
        if (kept?.has(key) === true) continue;
        await blobs.delete(key);
        deleted++;
        this.#deleted.expired++;
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

  /**
   * Deletes the objects under `samples/` that no sample index row names (as
   * image or map) and no label keeps: uploads whose row never came (the device
   * evicted the sample first, died, or the cloud refused the row). An object
   * goes only when it is older than the grace and its device has moved on: the
   * index holds a sample the device captured after the object was written
   * (devices send sample rows oldest first, so its row is not on the way), or
   * the device is no longer registered, or the object is older than the
   * sample retention (a row arriving now would be deleted as expired). One run
   * at a time; close() stops a run between pages.
   */
  sweepOrphans(nowMs = Date.now()): Promise<OrphanSweepResult> {
    this.#sweeping ??= this.#sweep(nowMs)
      .then(
        (result) => {
          this.#sweeps.ok++;
          return result;
        },
        (err: unknown) => {
          this.#sweeps.failed++;
          throw err;
        },
      )
      .finally(() => {
        this.#sweeping = undefined;
      });
    return this.#sweeping;
  }

  async #sweep(nowMs: number): Promise<OrphanSweepResult> {
    const result: OrphanSweepResult = { listed: 0, deleted: 0, waiting: 0 };
    const blobs = this.#o.blobs;
    if (blobs === undefined) return result;
    const pageSize = this.#o.orphanPageSize ?? 1000;
    const youngAfterMs =
      nowMs - (this.#o.orphanGraceHours ?? DEFAULT_ORPHAN_GRACE_HOURS) * 3_600_000;
    const expiredBeforeMs = nowMs - this.#o.days.samples * 86_400_000;
    const newest = new Map<string, number | undefined>();
    const movedOn = (key: string, modifiedAtMs: number): boolean => {
      if (modifiedAtMs < expiredBeforeMs) return true;
      const deviceId = key.split('/', 2)[1] ?? '';
      if (this.#o.knownDevice !== undefined && !this.#o.knownDevice(deviceId)) return true;
      if (!newest.has(deviceId)) newest.set(deviceId, this.#o.store.newestSampleAtMs(deviceId));
      const at = newest.get(deviceId);
      return at !== undefined && at > modifiedAtMs;
    };
    const sweepPage = async (page: BlobListEntry[]) => {
      const keys = page.map((e) => e.key);
      const named = this.#o.store.indexedObjects(keys);
      const unnamed = page.filter((e) => !named.has(e.key));
      if (unnamed.length === 0) return;
      const kept = this.#o.keptObjects?.(unnamed.map((e) => e.key));
      for (const e of unnamed) {
        if (kept?.has(e.key) === true) continue;
        if (!movedOn(e.key, e.modifiedAt.getTime())) {
          result.waiting++;
          continue;
        }
        await blobs.delete(e.key);
        result.deleted++;
        this.#deleted.orphan++;
      }
    };
    let page: BlobListEntry[] = [];
    for await (const entry of blobs.list(SAMPLES_PREFIX, { pageSize })) {
      if (this.#closed) break;
      result.listed++;
      // Young objects may be uploads whose row is on its way: not even looked up.
      if (entry.modifiedAt.getTime() > youngAfterMs) continue;
      page.push(entry);
      if (page.length >= pageSize) {
        await sweepPage(page);
        page = [];
      }
    }
    if (!this.#closed && page.length > 0) await sweepPage(page);
    this.#o.logger.info(
      { event: 'retention.orphans', ...result, stopped: this.#closed },
      result.deleted > 0
        ? 'deleted sample objects no index row names'
        : 'no orphaned sample objects to delete',
    );
    return result;
  }

  /** The job's counters as Prometheus samples. */
  metrics(): MetricSample[] {
    return [
      {
        name: 'linesight_retention_objects_deleted_total',
        help: 'Sample objects deleted from storage by the retention job, by reason: expired (the sample is past retention) or orphan (no index row names it)',
        type: 'counter',
        values: [
          { labels: { reason: 'expired' }, value: this.#deleted.expired },
          { labels: { reason: 'orphan' }, value: this.#deleted.orphan },
        ],
      },
      {
        name: 'linesight_retention_orphan_sweeps_total',
        help: 'Runs of the sweep of orphaned sample objects, by outcome (failed: storage refused or broke off the listing or a delete; on S3 often a missing s3:ListBucket)',
        type: 'counter',
        values: [
          { labels: { outcome: 'ok' }, value: this.#sweeps.ok },
          { labels: { outcome: 'failed' }, value: this.#sweeps.failed },
        ],
      },
    ];
  }

  /** Stops the schedules and waits for a sweep in progress to stop; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const tasks = this.#tasks.splice(0);
    for (const task of tasks) await task.destroy();
    await this.#sweeping?.catch(() => undefined);
  }
}
