import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  allDevicesFilter,
  decodeEdgeBatch,
  describeError,
  EDGE_CHANNEL_SCHEMAS,
  parseDeviceTopic,
  type EdgeChannel,
  withDeadline,
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
   * had not stored when it stopped is delivered again. Without it (and without
   * `inProcess`): a clean session, acknowledged by the broker on receipt.
   */
  durableClientId?: string;
  /**
   * Where sample images are stored: each sample's image is checked there (size and sha256
   * as announced, under the device's own prefix; its heatmap must exist) before the sample
   * is indexed. Without it samples are indexed as announced (tests of the ingest alone).
   */
  blobs?: Pick<BlobStore, 'verify' | 'stat'>;
  /**
   * Read from a broker in this process (the embedded broker) instead of over MQTT: each
   * message is handed over with a `done` that the ingest calls only after the commit that
   * stored it (or once it is dropped as invalid, foreign, unknown or duplicate), and the
   * broker sends the device its PUBACK only then. A cloud killed before the commit never
   * acknowledged the batch, so the device keeps it and sends it again. mqttUrl, username,
   * password and tls are not used then.
   */
  inProcess?: InProcessSource;
}

/** A broker in this process that hands device publishes over and acknowledges each at its `done` (EmbeddedBroker). */
export interface InProcessSource {
  holdPublishes(
    accepts: (topic: string) => boolean,
    handler: (topic: string, payload: Buffer, done: () => void) => void,
  ): () => void;
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

/**
 * Batches awaiting their acknowledgement that start a commit at once: an external broker
 * holds back more than its in-flight limit, and on the embedded broker each held batch
 * pauses its device's connection, so many of them are committed without waiting for the
 * timer.
 */
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
  /**
   * Acknowledgements of the batches received (or checked, for samples) since the last commit,
   * called after it: PUBACKs on a durable session, the in-process broker's `done`. Empty on
   * a clean MQTT session, which the broker acknowledged on receipt.
   */
  #acks: (() => void)[] = [];
  /** Stops taking publishes from the in-process broker. */
  #unsubscribe: (() => Promise<void>) | undefined;
  /** Connections of the durable session so far (packet ids are only valid on their own). */
  #connection = 0;
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
    if (this.#o.inProcess !== undefined) await this.#startInProcess(this.#o.inProcess);
    else await this.#startMqtt();
    this.#timer = setInterval(() => this.flush(), this.#o.flushIntervalMs ?? 50);
    this.#timer.unref();
  }

  /**
   * The broker hands each device publish over before it acknowledges it, and the ingest
   * calls back after the commit. Holding the callback is the back-pressure: aedes reads a
   * connection's next packets only once the ones it is handling are done, so what is pending
   * here is bounded by one socket read per connected device (and maxPendingRecords does not
   * apply: there is no stream to pause).
   */
  #startInProcess(source: InProcessSource): Promise<void> {
    const release = source.holdPublishes(
      (topic) => {
        const channel = parseDeviceTopic(topic)?.channel;
        return channel !== undefined && (CHANNELS as readonly string[]).includes(channel);
      },
      (topic, payload, done) => this.#onMessage(topic, payload, done),
    );
    this.#unsubscribe = () => {
      release();
      return Promise.resolve();
    };
    return Promise.resolve();
  }

  async #startMqtt(): Promise<void> {
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
      // mqtt.js emits 'message' just before handleMessage, so the message is read here.
      client.handleMessage = (packet, callback) => {
        const payload =
          typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
        const messageId = packet.messageId;
        if (packet.qos === 1 && messageId !== undefined) {
          const connection = this.#connection;
          this.#onMessage(packet.topic, payload, () => {
            // A PUBACK for a packet id of an earlier connection could acknowledge another batch.
            if (connection === this.#connection) this.#puback(messageId);
          });
          callback(new Error('acknowledged after the commit'));
          return;
        }
        this.#onMessage(packet.topic, payload);
        callback();
      };
      // Packet ids belong to one connection; the broker redelivers the unacknowledged ones.
      client.on('close', () => {
        this.#connection++;
        this.#acks = [];
      });
    } else client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    client.on('error', (err) => this.#o.logger.warn({ err: err.message }, 'ingest mqtt error'));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync(CHANNELS.map(allDevicesFilter), { qos: 1 });
  }

  /** Handles one message (exposed for tests of the validation rules). */
  handle(topic: string, payload: Buffer): void {
    this.#onMessage(topic, payload);
  }

  /** Commits what is pending in one transaction. */
  flush(): void {
    if (this.#pending.length === 0) {
      this.#ack();
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
    // Every acknowledgement in #acks belongs to a batch queued before this commit (a sample
    // batch's is added only when its checked records are queued): a failed write is
    // acknowledged too, counted and logged, rather than redelivered forever.
    this.#ack();
    this.onCommit?.(writes, Date.now());
    if (this.#paused) {
      this.#paused = false;
      this.#client?.stream.resume();
    }
  }

  /**
   * Stops reading, commits what is pending, disconnects; idempotent. Devices must be
   * disconnected first (the cloud does). The in-process source (embedded broker) is released
   * first, so the broker refuses edge data from then on; what it handed over is committed
   * and only then acknowledged (a device that no longer sees its PUBACK sends the batch
   * again and the store counts it as a duplicate). A durable session (external broker) is
   * left subscribed. A clean MQTT session unsubscribes first: the broker answers after
   * every message it sent before, so what it acknowledged to a device (and wrote to this
   * connection) is read and committed, not dropped with the socket.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      const client = this.#client;
      if (this.#unsubscribe !== undefined) await this.#unsubscribe();
      else if (this.#o.durableClientId !== undefined) {
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
   * Acknowledges every batch received before the commit that just ran (or dropped as
   * invalid, or failed to store: counted and logged, not redelivered forever). The list is
   * taken first: an in-process `done` may hand over the next message synchronously.
   */
  #ack(): void {
    if (this.#acks.length === 0) return;
    const acks = this.#acks;
    this.#acks = [];
    for (const ack of acks) ack();
  }

  /** Sends a PUBACK on the durable session (lost with the connection: the broker redelivers). */
  #puback(messageId: number): void {
    const client = this.#client as unknown as {
      connected: boolean;
      _sendPacket(packet: { cmd: 'puback'; messageId: number }): void;
    };
    if (client.connected) client._sendPacket({ cmd: 'puback', messageId });
  }

  /** Holds a message's acknowledgement until the next commit; enough held starts it at once. */
  #ackAfterCommit(ack: (() => void) | undefined): void {
    if (ack === undefined) return;
    this.#acks.push(ack);
    if (this.#acks.length === ACK_BATCH) setImmediate(() => this.flush());
  }

  #onMessage(topic: string, payload: Buffer, ack?: () => void): void {
    const parsed = parseDeviceTopic(topic);
    if (parsed === undefined || !(CHANNELS as readonly string[]).includes(parsed.channel)) {
      this.#ackAfterCommit(ack);
      return;
    }
    // A sample batch being checked in storage is acknowledged after the commit that follows
    // its check (its records are queued then), every other batch after the next commit. On
    // the embedded broker a sample batch thus pauses its device's connection for as long as
    // storage takes to answer (milliseconds; seconds while it retries, VERIFY_RETRY_MS):
    // that device's other publishes wait, no one else's.
    const afterCheck = ack === undefined ? undefined : () => this.#ackAfterCommit(ack);
    if (!this.#accept(parsed, payload, afterCheck)) this.#ackAfterCommit(ack);
  }

  /**
   * Validates and queues one batch. Returns true when a storage check of samples started,
   * which calls `afterCheck` once its records are queued.
   */
  #accept(
    parsed: { deviceId: string; channel: string },
    payload: Buffer,
    afterCheck: (() => void) | undefined,
  ): boolean {
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
      return false;
    }
    if (batch.deviceId !== deviceId) {
      this.stats.foreignDevice++;
      this.#o.logger.warn(
        { deviceId, payloadDeviceId: batch.deviceId, channel },
        'dropped a batch naming another device',
      );
      return false;
    }
    if (!this.#o.knownDevice(deviceId)) {
      this.stats.unknownDevice++;
      return false;
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
        else {
          this.#verifySamples(deviceId, batch.records, afterCheck);
          return true;
        }
        break;
    }
    return false;
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
  #verifySamples(
    deviceId: string,
    records: SampleRecord[],
    afterCheck: (() => void) | undefined,
  ): void {
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
    })().finally(() => afterCheck?.());
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
