import type { Logger } from 'pino';
import {
  Backoff,
  describeError,
  encodeEdgeBatch,
  EDGE_CHANNEL_SCHEMAS,
  type BackoffOptions,
  type EdgeChannel,
} from '@linesight/protocol';
import type { EdgeStore, StoredSample, StoreKind, TakenBatch } from '../store/edge-store.ts';

/** Uploads sampled images; returns the object keys of each sample it stored (undefined: retry later). */
export interface SampleUploader {
  upload(
    samples: readonly StoredSample[],
  ): Promise<({ objectKey: string; mapKey?: string } | undefined)[]>;
}

/** Options of the forwarder. */
export interface ForwarderOptions {
  deviceId: string;
  store: EdgeStore;
  /** Publishes at QoS 1; resolves on the broker's PUBACK. */
  publish: (channel: EdgeChannel, payload: Buffer) => Promise<void>;
  connected: () => boolean;
  logger: Logger;
  /** Records sent per second at most, so a returning fleet does not flood the cloud (default 2000). */
  recordsPerSec?: number;
  /** Batches awaiting PUBACK at once (default 4). */
  maxInFlight?: number;
  /** Records per batch at most (default 500). */
  batchRecords?: number;
  /** How often the forwarder looks for work (default 100 ms). */
  tickMs?: number;
  /** Uploads sample images; without one, samples stay on the device (under the quota). */
  uploader?: SampleUploader;
  /**
   * The wait after an upload round that stored nothing, before the next (default 1 s
   * doubling to 60 s, less up to half at random), so a fleet does not keep an
   * overloaded cloud busy with uploads that time out.
   */
  uploadBackoff?: BackoffOptions;
  /** Clock for the upload backoff (tests). */
  nowMs?: () => number;
}

/** Forwarding counters, cumulative. */
export interface ForwarderStats {
  batchesSent: number;
  batchesAcked: number;
  recordsAcked: Record<StoreKind, number>;
  failures: number;
  uploadFailures: number;
  /** Upload rounds that stored nothing and made the next wait. */
  uploadBackoffs: number;
}

// Telemetry windows first (they are small and say how the line is doing now), then the log.
const ORDER: readonly StoreKind[] = ['windows', 'events', 'minutes', 'verdicts', 'samples'];
const CHANNEL: Record<StoreKind, EdgeChannel> = {
  windows: 'windows',
  events: 'event-log',
  minutes: 'verdicts',
  verdicts: 'verdicts',
  samples: 'samples',
};

/** No acknowledgement for this long while batches are in flight is logged as a stall. */
const STALL_WARN_MS = 60_000;

/**
 * Sends what the store holds over MQTT at QoS 1, in gzip-compressed batches,
 * and deletes records only when the broker acknowledged them. Oldest first
 * within each kind, windows before the verdict backlog, at most
 * `recordsPerSec` (a token bucket). When the link drops, everything not yet
 * acknowledged is sent again after reconnecting (the cloud stores each
 * record once by its stable id).
 */
export class Forwarder {
  readonly #o: Required<Omit<ForwarderOptions, 'uploader' | 'uploadBackoff'>> & {
    uploader?: SampleUploader;
  };
  readonly #uploadBackoff: Backoff;
  /** No upload round starts before this (ms on `nowMs`): the rounds before it stored nothing. */
  #uploadAfterMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #tokens: number;
  #lastRefill = performance.now();
  #inFlight = new Set<Promise<void>>();
  #generation = 0;
  #uploading: Promise<void> | undefined;
  readonly #uploadingIds = new Set<number>();
  #closed = false;
  /** When a batch was last acknowledged, or forwarding (re)started; for the stall warning. */
  #progressAt = performance.now();
  /** `batchesSent` when a batch was last acknowledged. */
  #sentAtProgress = 0;
  #warnedAt = 0;
  readonly stats: ForwarderStats = {
    batchesSent: 0,
    batchesAcked: 0,
    recordsAcked: { verdicts: 0, minutes: 0, windows: 0, events: 0, samples: 0 },
    failures: 0,
    uploadFailures: 0,
    uploadBackoffs: 0,
  };

  constructor(options: ForwarderOptions) {
    this.#o = {
      recordsPerSec: 2000,
      maxInFlight: 4,
      batchRecords: 500,
      tickMs: 100,
      nowMs: () => performance.now(),
      ...options,
    };
    this.#uploadBackoff = new Backoff({
      initialMs: 1000,
      maxMs: 60_000,
      ...options.uploadBackoff,
    });
    this.#tokens = this.#o.recordsPerSec;
  }

  /** Starts looking for work. */
  start(): void {
    this.#timer = setInterval(() => this.tick(), this.#o.tickMs);
    this.#timer.unref();
  }

  /** The link dropped: whatever was not acknowledged goes again after reconnecting. */
  onDisconnect(): void {
    this.#generation++;
    this.#o.store.rewind();
  }

  /** Sends as much as the rate and the in-flight limit allow. */
  tick(): void {
    if (this.#closed || !this.#o.connected()) {
      this.#progressAt = performance.now();
      return;
    }
    this.#warnIfStalled();
    this.#uploadSamples();
    const now = performance.now();
    const rate = this.#o.recordsPerSec;
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#lastRefill) / 1000) * rate);
    this.#lastRefill = now;
    for (const kind of ORDER) {
      while (this.#inFlight.size < this.#o.maxInFlight && this.#tokens >= 1) {
        const limit = Math.max(1, Math.min(this.#o.batchRecords, Math.floor(this.#tokens)));
        const batch = this.#take(kind, limit);
        if (batch === undefined) break;
        this.#tokens -= batch.records.length;
        this.#send(batch);
      }
    }
  }

  /** Stops; waits (bounded by the link's ack timeout) for batches in flight. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.allSettled([...this.#inFlight, this.#uploading]);
  }

  /**
   * Says so when the link is up, batches went out, and none has been
   * acknowledged for a minute: a state that must not wait silently (once a
   * minute, with counts).
   */
  #warnIfStalled(): void {
    const now = performance.now();
    // Nothing sent since the last acknowledgement: idle, not stalled.
    if (this.stats.batchesSent === this.#sentAtProgress) {
      this.#progressAt = now;
      return;
    }
    if (now - this.#progressAt < STALL_WARN_MS || now - this.#warnedAt < STALL_WARN_MS) return;
    this.#warnedAt = now;
    this.#o.logger.warn(
      {
        sinceAckMs: Math.round(now - this.#progressAt),
        inFlight: this.#inFlight.size,
        batchesSent: this.stats.batchesSent,
        batchesAcked: this.stats.batchesAcked,
        failures: this.stats.failures,
      },
      'forwarding stalled: connected, but no batch acknowledged for a minute',
    );
  }

  #take(kind: StoreKind, limit: number): TakenBatch<unknown> | undefined {
    const store = this.#o.store;
    switch (kind) {
      case 'verdicts':
        return store.take('verdicts', limit);
      case 'minutes':
        return store.take('minutes', limit);
      case 'windows':
        return store.take('windows', Math.min(limit, 50));
      case 'events':
        return store.take('events', Math.min(limit, 100));
      case 'samples':
        return store.take('samples', Math.min(limit, 200));
    }
  }

  #send(batch: TakenBatch<unknown>): void {
    const { deviceId, store, logger } = this.#o;
    const channel = CHANNEL[batch.kind];
    let payload: Buffer;
    try {
      payload = encodeEdgeBatch(
        EDGE_CHANNEL_SCHEMAS[channel],
        batchBody(channel, deviceId, batch) as never,
        channel,
      );
    } catch (err) {
      // A record the schema refuses would block its queue forever: drop it loudly.
      logger.error(
        { kind: batch.kind, err: describeError(err) },
        'dropping a stored batch that does not match its schema',
      );
      store.ack(batch.kind, batch.firstId, batch.lastId);
      return;
    }
    const generation = this.#generation;
    this.stats.batchesSent++;
    const sent = this.#o.publish(channel, payload).then(
      () => {
        store.ack(batch.kind, batch.firstId, batch.lastId);
        this.#progressAt = performance.now();
        this.#sentAtProgress = this.stats.batchesSent;
        this.stats.batchesAcked++;
        this.stats.recordsAcked[batch.kind] += batch.records.length;
      },
      (err: unknown) => {
        this.stats.failures++;
        // One rewind per generation: the batches sent with it come back together.
        if (generation === this.#generation) {
          this.#generation++;
          store.rewind();
          logger.debug({ kind: batch.kind, err: describeError(err) }, 'batch not acknowledged');
        }
      },
    );
    this.#inFlight.add(sent);
    void sent.finally(() => {
      this.#inFlight.delete(sent);
      // More work may be waiting: do not wait for the next tick.
      if (!this.#closed) setImmediate(() => this.tick());
    });
  }

  /** A round stored nothing: the next waits, longer after each such round. */
  #backOffUploads(): void {
    const waitMs = this.#uploadBackoff.next();
    this.#uploadAfterMs = this.#o.nowMs() + waitMs;
    this.stats.uploadBackoffs++;
    this.#o.logger.debug({ waitMs }, 'no sample of the round was stored; waiting before the next');
  }

  #uploadSamples(): void {
    const uploader = this.#o.uploader;
    if (uploader === undefined || this.#uploading !== undefined) return;
    if (this.#o.nowMs() < this.#uploadAfterMs) return;
    const samples = this.#o.store.pendingUploads(32, this.#uploadingIds);
    if (samples.length === 0) return;
    for (const s of samples) this.#uploadingIds.add(s.id);
    this.#uploading = uploader
      .upload(samples)
      .then(
        (keys) => {
          this.#o.store.markUploaded(
            samples.flatMap((s, i) => {
              const key = keys[i];
              return key === undefined ? [] : [{ id: s.id, ...key }];
            }),
          );
          if (keys.some((k) => k !== undefined)) this.#uploadBackoff.reset();
          else this.#backOffUploads();
        },
        (err: unknown) => {
          this.stats.uploadFailures++;
          this.#o.logger.debug({ err: describeError(err) }, 'sample upload failed');
          this.#backOffUploads();
        },
      )
      .finally(() => {
        for (const s of samples) this.#uploadingIds.delete(s.id);
        this.#uploading = undefined;
      });
  }
}

function batchBody(channel: EdgeChannel, deviceId: string, batch: TakenBatch<unknown>): unknown {
  switch (channel) {
    case 'verdicts':
      return batch.kind === 'minutes'
        ? { schema: 'linesight.verdicts/v1', deviceId, records: [], minutes: batch.records }
        : { schema: 'linesight.verdicts/v1', deviceId, records: batch.records };
    case 'windows':
      return { schema: 'linesight.windows/v1', deviceId, records: batch.records };
    case 'event-log':
      return { schema: 'linesight.event-log/v1', deviceId, records: batch.records };
    case 'samples':
      return { schema: 'linesight.samples/v1', deviceId, records: batch.records };
  }
}
