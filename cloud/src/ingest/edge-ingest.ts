import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  allDevicesFilter,
  decodeEdgeBatch,
  describeError,
  EDGE_CHANNEL_SCHEMAS,
  parseDeviceTopic,
  type EdgeChannel,
  type SampleRecord,
} from '@linesight/protocol';
import type { BlobStore } from '../blobs/blob-store.ts';
import { sampleKey } from '../http/routes/upload-routes.ts';
import type { EdgeDataStore, EdgeWrite } from './edge-data-store.ts';
import type { ServiceMqttTls } from '../tls/cloud-tls.ts';

/** Options of the edge-data ingest. */
export interface EdgeIngestOptions {
  mqttUrl: string;
  username: string;
  password: string;
  /** CA and certificate pin for a TLS broker. */
  tls?: ServiceMqttTls;
  store: EdgeDataStore;
  /** True when a device id is provisioned. */
  knownDevice: (deviceId: string) => boolean;
  logger: Logger;
  /** Pending writes are committed at least this often (default 50 ms). */
  flushIntervalMs?: number;
  /** A commit is started as soon as this many records wait (default 5000). */
  flushRecords?: number;
  /** Records waiting beyond this make the ingest stop reading from the broker until they are written (default 200,000). */
  maxPendingRecords?: number;
  /**
   * A fixed client id for a persistent session (an external broker): the broker keeps the
   * QoS 1 subscriptions and queues batches while the cloud is away, and each batch is
   * acknowledged to the broker only after the commit that stored it, so a batch the cloud
   * had not stored when it stopped is delivered again. Without it: a clean session,
   * acknowledged on receipt (the embedded broker, which stops with the cloud).
   */
  durableClientId?: string;
  /**
   * Where sample images are stored: each sample's image is checked there (size and sha256
   * as announced, under the device's own prefix; its heatmap must exist) before the sample
   * is indexed. Without it samples are indexed as announced (tests of the ingest alone).
   */
  blobs?: Pick<BlobStore, 'verify' | 'stat'>;
}

/** Ingest counters, cumulative. */
export interface EdgeIngestStats {
  batches: Record<EdgeChannel, number>;
  records: number;
  stored: number;
  /** Records already stored (a replay or a resend after a lost PUBACK): dropped. */
  duplicates: number;
  /** Batches that did not decode or match their schema: dropped. */
  invalid: number;
  /** Batches whose payload names another device than the topic: dropped. */
  foreignDevice: number;
  /** Batches from device ids that are not provisioned: dropped. */
  unknownDevice: number;
  /** Commits that failed (their records are counted in `failedRecords`). */
  failedWrites: number;
  failedRecords: number;
  /** Sample records not indexed because their object was not in storage (or its heatmap). */
  samplesMissing: number;
  /** Sample records not indexed because the stored object's size or sha256 differs, or the key is not the device's. */
  samplesMismatch: number;
  /** Sample records not indexed because storage could not be asked (after retries). */
  samplesUnverified: number;
}

/** Batches awaiting their PUBACK that start a commit at once (the broker holds back more than its in-flight limit). */
const ACK_BATCH = 32;

const CHANNELS: readonly EdgeChannel[] = ['verdicts', 'windows', 'event-log', 'samples'];

/** Sample objects checked in storage at once. */
const VERIFY_CONCURRENCY = 8;
/** Delays before asking storage again when it failed to answer. */
const VERIFY_RETRY_MS = [500, 2000];
/** How long close() waits for sample checks in progress. */
const VERIFY_DEADLINE_MS = 10_000;

/** How long close() waits for the broker to confirm the unsubscribe (it bounds shutdown). */
const UNSUBSCRIBE_DEADLINE_MS = 5000;

/** Resolves or rejects with `promise`, or rejects after `ms`. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Subscribes to every device's edge-data channels at QoS 1, validates each
 * batch (schema, topic device = payload device, provisioned device) and
 * writes records in batched SQLite transactions; a record already stored is
 * counted as a duplicate and ignored.
 */
export class EdgeIngest {
  readonly #o: EdgeIngestOptions;
  #client: MqttClient | undefined;
  #pending: EdgeWrite[] = [];
  #pendingRecords = 0;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #paused = false;
  /** Packet ids of the batches received since the last commit, acknowledged after it (durable session only). */
  #unacked: number[] = [];
  readonly stats: EdgeIngestStats = {
    batches: { verdicts: 0, windows: 0, 'event-log': 0, samples: 0 },
    records: 0,
    stored: 0,
    duplicates: 0,
    invalid: 0,
    foreignDevice: 0,
    unknownDevice: 0,
    failedWrites: 0,
    failedRecords: 0,
    samplesMissing: 0,
    samplesMismatch: 0,
    samplesUnverified: 0,
  };
  /** Sample batches whose objects are being checked in storage. */
  readonly #verifying = new Set<Promise<void>>();
  #checksRunning = 0;
  readonly #checkWaiters: (() => void)[] = [];
  /** Records received and not yet committed. */
  get pendingRecords(): number {
    return this.#pendingRecords;
  }

  /** Called after each commit with the records it wrote (benchmarks measure lag with it). */
  onCommit: ((writes: readonly EdgeWrite[], committedAtMs: number) => void) | undefined;

  constructor(options: EdgeIngestOptions) {
    this.#o = options;
  }

  /** Connects and subscribes; resolves once subscribed. */
  async start(): Promise<void> {
    const durable = this.#o.durableClientId !== undefined;
    const client = mqtt.connect(this.#o.mqttUrl, {
      clientId:
        this.#o.durableClientId ?? `linesight-ingest-${process.pid}-${Date.now().toString(36)}`,
      username: this.#o.username,
      password: this.#o.password,
      ...this.#o.tls,
      protocolVersion: 4,
      clean: !durable,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    this.#client = client;
    if (durable) {
      // mqtt.js answers a QoS 1 message with PUBACK when handleMessage calls back without an
      // error; with an error it sends none and goes on with the next packet. The PUBACK is
      // sent after the commit instead (#ack), so the broker keeps every batch not yet stored.
      client.handleMessage = (packet, callback) => {
        if (packet.qos === 1 && packet.messageId !== undefined) {
          this.#unacked.push(packet.messageId);
          if (this.#unacked.length >= ACK_BATCH) setImmediate(() => this.flush());
          callback(new Error('acknowledged after the commit'));
          return;
        }
        callback();
      };
      // Packet ids belong to one connection; the broker redelivers the unacknowledged ones.
      client.on('close', () => {
        this.#unacked = [];
      });
    }
    client.on('error', (err) => this.#o.logger.warn({ err: err.message }, 'ingest mqtt error'));
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync(CHANNELS.map(allDevicesFilter), { qos: 1 });
    this.#timer = setInterval(() => this.flush(), this.#o.flushIntervalMs ?? 50);
    this.#timer.unref();
  }

  /** Handles one message (exposed for tests of the validation rules). */
  handle(topic: string, payload: Buffer): void {
    this.#onMessage(topic, payload);
  }

  /** Commits what is pending in one transaction. */
  flush(): void {
    if (this.#pending.length === 0) {
      if (this.#verifying.size === 0) this.#ack();
      return;
    }
    const writes = this.#pending;
    const records = this.#pendingRecords;
    this.#pending = [];
    this.#pendingRecords = 0;
    try {
      const result = this.#o.store.write(writes);
      this.stats.stored += result.stored;
      this.stats.duplicates += result.duplicates;
    } catch (err) {
      this.stats.failedWrites++;
      this.stats.failedRecords += records;
      this.#o.logger.error({ records, err: describeError(err) }, 'edge data could not be stored');
    }
    // A sample batch still being checked was received before this commit: its PUBACK waits.
    if (this.#verifying.size === 0) this.#ack();
    this.onCommit?.(writes, Date.now());
    if (this.#paused) {
      this.#paused = false;
      this.#client?.stream.resume();
    }
  }

  /**
   * Stops reading, commits what is pending, disconnects; idempotent. On the
   * embedded broker's clean session it unsubscribes first: the broker answers
   * after every message it sent before, so what it acknowledged to a device
   * (and wrote to this connection) is read and committed, not dropped with the
   * socket. Devices must be disconnected first (the cloud does), or they could
   * publish in between. A durable session (external broker) is left subscribed.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      const client = this.#client;
      if (this.#o.durableClientId !== undefined) {
        // Commit and acknowledge on the live session, then leave it gracefully so the
        // PUBACKs go out; what arrives meanwhile is stored below and delivered again later.
        // (No unsubscribe: the broker must keep queueing for the session while the cloud is away.)
        await this.#verified();
        this.flush();
        if (client !== undefined) await client.endAsync(false);
      } else if (client !== undefined) {
        if (client.connected)
          await withDeadline(
            client.unsubscribeAsync(CHANNELS.map(allDevicesFilter)),
            UNSUBSCRIBE_DEADLINE_MS,
          ).catch((err: unknown) =>
            this.#o.logger.warn(
              { err: describeError(err) },
              'ingest could not confirm it read everything before closing',
            ),
          );
        await client.endAsync(true);
      }
      await this.#verified();
      this.flush();
      this.#ack();
    })();
    return this.#closing;
  }

  /**
   * Acknowledges to the broker every batch received before the commit that just ran (or
   * dropped as invalid, or failed to store: counted and logged, not redelivered forever).
   */
  #ack(): void {
    if (this.#unacked.length === 0) return;
    const ids = this.#unacked;
    this.#unacked = [];
    const client = this.#client as unknown as {
      connected: boolean;
      _sendPacket(packet: { cmd: 'puback'; messageId: number }): void;
    };
    if (!client.connected) return;
    for (const messageId of ids) client._sendPacket({ cmd: 'puback', messageId });
  }

  #onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (parsed === undefined || !(CHANNELS as readonly string[]).includes(parsed.channel)) return;
    const channel = parsed.channel as EdgeChannel;
    const { deviceId } = parsed;
    this.stats.batches[channel]++;
    let batch;
    try {
      batch = decodeEdgeBatch(EDGE_CHANNEL_SCHEMAS[channel], payload, channel);
    } catch (err) {
      this.stats.invalid++;
      this.#o.logger.warn(
        { deviceId, channel, err: describeError(err) },
        'dropped an invalid batch',
      );
      return;
    }
    if (batch.deviceId !== deviceId) {
      this.stats.foreignDevice++;
      this.#o.logger.warn(
        { deviceId, payloadDeviceId: batch.deviceId, channel },
        'dropped a batch naming another device',
      );
      return;
    }
    if (!this.#o.knownDevice(deviceId)) {
      this.stats.unknownDevice++;
      return;
    }
    switch (batch.schema) {
      case 'linesight.verdicts/v1':
        this.#queue({ kind: 'verdicts', deviceId, records: batch.records });
        if (batch.minutes !== undefined && batch.minutes.length > 0)
          this.#queue({ kind: 'minutes', deviceId, records: batch.minutes });
        break;
      case 'linesight.windows/v1':
        this.#queue({ kind: 'windows', deviceId, records: batch.records });
        break;
      case 'linesight.event-log/v1':
        this.#queue({ kind: 'events', deviceId, records: batch.records });
        break;
      case 'linesight.samples/v1':
        if (this.#o.blobs === undefined)
          this.#queue({ kind: 'samples', deviceId, records: batch.records });
        else this.#verifySamples(deviceId, batch.records);
        break;
    }
  }

  /** Resolves when no sample batch is being checked (bounded by a deadline). */
  async #verified(): Promise<void> {
    if (this.#verifying.size === 0) return;
    await withDeadline(Promise.allSettled([...this.#verifying]), VERIFY_DEADLINE_MS).catch(
      (err: unknown) =>
        this.#o.logger.warn({ err: describeError(err) }, 'sample checks still running at close'),
    );
  }

  /** Checks each sample's objects in storage, then queues those that are there as announced. */
  #verifySamples(deviceId: string, records: SampleRecord[]): void {
    const blobs = this.#o.blobs as Pick<BlobStore, 'verify' | 'stat'>;
    const run = (async () => {
      const ok: SampleRecord[] = [];
      await Promise.all(
        records.map(async (record) => {
          const outcome = await this.#limited(() => this.#checkSample(blobs, deviceId, record));
          if (outcome === 'ok') ok.push(record);
          else {
            if (outcome === 'missing') this.stats.samplesMissing++;
            else if (outcome === 'mismatch') this.stats.samplesMismatch++;
            else this.stats.samplesUnverified++;
            this.#o.logger.warn(
              {
                deviceId,
                boot: record.boot,
                seq: record.seq,
                objectKey: record.objectKey,
                outcome,
              },
              'sample not indexed: its object is not in storage as announced',
            );
          }
        }),
      );
      ok.sort((a, b) => a.seq - b.seq);
      this.#queue({ kind: 'samples', deviceId, records: ok });
    })();
    this.#verifying.add(run);
    void run.finally(() => this.#verifying.delete(run));
  }

  /** Runs `fn` when fewer than VERIFY_CONCURRENCY checks are running (across all batches). */
  async #limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#checksRunning >= VERIFY_CONCURRENCY)
      await new Promise<void>((resolve) => this.#checkWaiters.push(resolve));
    this.#checksRunning++;
    try {
      return await fn();
    } finally {
      this.#checksRunning--;
      this.#checkWaiters.shift()?.();
    }
  }

  async #checkSample(
    blobs: Pick<BlobStore, 'verify' | 'stat'>,
    deviceId: string,
    record: SampleRecord,
  ): Promise<'ok' | 'missing' | 'mismatch' | 'unverified'> {
    const prefix = sampleKey(deviceId, '');
    if (
      !record.objectKey.startsWith(prefix) ||
      (record.mapKey !== undefined && !record.mapKey.startsWith(prefix))
    )
      return 'mismatch';
    for (let attempt = 0; ; attempt++) {
      try {
        const image = await blobs.verify(record.objectKey, {
          bytes: record.bytes,
          sha256: record.sha256,
        });
        if (image !== 'ok') return image;
        if (record.mapKey !== undefined && (await blobs.stat(record.mapKey)) === undefined)
          return 'missing';
        return 'ok';
      } catch (err) {
        const delayMs = VERIFY_RETRY_MS[attempt];
        if (delayMs === undefined) {
          this.#o.logger.warn(
            { deviceId, objectKey: record.objectKey, err: describeError(err) },
            'storage did not answer a sample check',
          );
          return 'unverified';
        }
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  #queue(write: EdgeWrite): void {
    if (write.records.length === 0) return;
    this.#pending.push(write);
    this.#pendingRecords += write.records.length;
    this.stats.records += write.records.length;
    if (this.#pendingRecords >= (this.#o.flushRecords ?? 5000)) setImmediate(() => this.flush());
    // Backpressure: stop reading from the broker rather than buffer without bound.
    if (this.#pendingRecords >= (this.#o.maxPendingRecords ?? 200_000) && !this.#paused) {
      this.#paused = true;
      this.#client?.stream.pause();
    }
  }
}
