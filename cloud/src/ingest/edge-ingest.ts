import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  allDevicesFilter,
  decodeEdgeBatch,
  describeError,
  EDGE_CHANNEL_SCHEMAS,
  parseDeviceTopic,
  type EdgeChannel,
} from '@linesight/protocol';
import type { EdgeDataStore, EdgeWrite } from './edge-data-store.ts';

/** Options of the edge-data ingest. */
export interface EdgeIngestOptions {
  mqttUrl: string;
  username: string;
  password: string;
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
}

const CHANNELS: readonly EdgeChannel[] = ['verdicts', 'windows', 'event-log', 'samples'];

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
  };
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
    const client = mqtt.connect(this.#o.mqttUrl, {
      clientId: `linesight-ingest-${process.pid}-${Date.now().toString(36)}`,
      username: this.#o.username,
      password: this.#o.password,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    this.#client = client;
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
    if (this.#pending.length === 0) return;
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
    this.onCommit?.(writes, Date.now());
    if (this.#paused) {
      this.#paused = false;
      this.#client?.stream.resume();
    }
  }

  /**
   * Stops reading, commits what is pending, disconnects; idempotent. Before
   * disconnecting it unsubscribes: the broker answers after every message it
   * sent before, so what it acknowledged to a device (and so wrote to this
   * connection first) is read and committed, not dropped with the socket.
   * Devices must be disconnected first (the cloud does), or they could
   * publish in between.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      const client = this.#client;
      if (client !== undefined) {
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
      this.flush();
    })();
    return this.#closing;
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
        this.#queue({ kind: 'samples', deviceId, records: batch.records });
        break;
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
