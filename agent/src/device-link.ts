import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  Backoff,
  CHANNEL_SCHEMAS,
  decodePayload,
  describeError,
  deviceTopic,
  encodePayload,
  type DesiredState,
  type DeviceEvent,
  type EdgeChannel,
  type FrameResult,
  type ReportedState,
  type Telemetry,
} from '@linesight/protocol';
import { mqttTlsOptions, type CloudTls } from './cloud-tls.ts';

/** Options of a device's MQTT connection. */
export interface DeviceLinkOptions {
  deviceId: string;
  mqttUrl: string;
  username: string;
  /** Empty for a device that logs in with its client certificate. */
  password: string;
  /** Pinned CA and client certificate (mqtts). */
  tls?: CloudTls;
  logger: Logger;
  /** A valid desired-state document arrived. */
  onDesired: (doc: DesiredState) => void;
  /** The connection (re)established; republish retained state here. */
  onConnect: () => void;
  /** The connection dropped (or an attempt failed); stored batches in flight are not acknowledged. */
  onDisconnect?: () => void;
  /** Messages kept while disconnected before the oldest is dropped (default 5000). */
  offlineQueueMax?: number;
  /** Reconnect backoff: first delay, doubling up to the cap, with jitter (defaults 1 s, 60 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** A stored batch not acknowledged within this is failed (default 30 s). */
  ackTimeoutMs?: number;
}

/** A stored batch could not be handed to the broker (not connected, or no PUBACK in time). */
export class PublishNotAcknowledgedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PublishNotAcknowledgedError';
  }
}

interface QueuedMessage {
  channel: 'results' | 'telemetry' | 'events' | 'reported';
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
}

/**
 * A device's MQTT session: presence with a will message, desired-state
 * subscription, and publishers for results, telemetry, events and state,
 * plus QoS 1 publishing of stored batches that resolves on the broker's
 * PUBACK. Reconnects by itself with capped exponential backoff and jitter,
 * logging one line per state change. While disconnected, messages wait in a bounded
 * in-memory queue (oldest dropped and counted past the limit; only the newest
 * retained state is kept) and go out in order on reconnect.
 */
export class DeviceLink {
  readonly #o: DeviceLinkOptions;
  #client: MqttClient | undefined;
  #closing: Promise<void> | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  readonly #backoff: Backoff;
  #state: 'connecting' | 'connected' | 'disconnected' = 'connecting';
  #lastError: string | undefined;
  readonly #offline: QueuedMessage[] = [];
  invalidDesired = 0;
  droppedOffline = 0;

  constructor(options: DeviceLinkOptions) {
    this.#o = options;
    this.#backoff = new Backoff({
      initialMs: options.reconnectMinMs ?? 1000,
      maxMs: options.reconnectMaxMs ?? 60_000,
    });
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  /** Starts connecting; does not wait for the broker (the agent must run offline too). */
  start(): void {
    const { deviceId, logger } = this.#o;
    const statusTopic = deviceTopic(deviceId, 'status');
    const client = mqtt.connect(this.#o.mqttUrl, {
      clientId: deviceId,
      username: this.#o.username,
      ...(this.#o.password !== '' ? { password: this.#o.password } : {}),
      ...mqttTlsOptions(this.#o.tls),
      protocolVersion: 4,
      clean: true,
      keepalive: 15,
      // Reconnects are scheduled here with backoff; MQTT.js only knows a fixed period.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      // Results are live data: drop QoS 0 messages while offline rather than queue without bound.
      queueQoSZero: false,
      will: {
        topic: statusTopic,
        payload: this.#statusPayload(false),
        qos: 1,
        retain: true,
      },
    });
    this.#client = client;
    client.on('error', (err) => {
      this.#lastError = err.message;
      logger.debug({ err: err.message }, 'mqtt error');
    });
    client.on('close', () => this.#onClose(client));
    client.on('connect', () => {
      clearTimeout(this.#reconnectTimer);
      this.#backoff.reset();
      this.#state = 'connected';
      this.#lastError = undefined;
      logger.info({ mqttUrl: this.#o.mqttUrl }, 'mqtt connected');
      void client
        .publishAsync(statusTopic, this.#statusPayload(true), { qos: 1, retain: true })
        .catch((err: unknown) => logger.warn({ err: describeError(err) }, 'status publish failed'));
      client.subscribeAsync(deviceTopic(deviceId, 'desired'), { qos: 1 }).then(
        (granted) => {
          if (granted.some((g) => g.qos === 128))
            logger.error('broker refused the desired-state subscription');
        },
        (err: unknown) => logger.warn({ err: describeError(err) }, 'subscribe failed'),
      );
      this.#flush(client);
      this.#o.onConnect();
    });
    client.on('message', (_topic, payload) => {
      if (payload.length === 0) return;
      try {
        this.#o.onDesired(decodePayload(CHANNEL_SCHEMAS.desired, payload, 'desired state'));
      } catch (err) {
        this.invalidDesired++;
        logger.warn({ err: describeError(err) }, 'ignored invalid desired state');
      }
    });
  }

  /**
   * Publishes a stored batch at QoS 1; resolves when the broker acknowledged
   * it (PUBACK), rejects when not connected, on failure, or after the ack timeout.
   */
  publishStored(channel: EdgeChannel, payload: Buffer): Promise<void> {
    const client = this.#client;
    if (client === undefined || !client.connected || this.#closing !== undefined)
      return Promise.reject(new PublishNotAcknowledgedError('not connected'));
    const timeoutMs = this.#o.ackTimeoutMs ?? 30_000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new PublishNotAcknowledgedError(`no PUBACK within ${timeoutMs} ms`)),
        timeoutMs,
      );
      timer.unref();
      client.publish(deviceTopic(this.#o.deviceId, channel), payload, { qos: 1 }, (err) => {
        clearTimeout(timer);
        if (err) reject(new PublishNotAcknowledgedError(err.message));
        else resolve();
      });
    });
  }

  /** Publishes one frame result (QoS 0: the line wants the newest, not a backlog). */
  publishResult(result: FrameResult): void {
    this.#publish('results', encodePayload(CHANNEL_SCHEMAS.results, result, 'result'), 0, false);
  }

  /** Publishes telemetry. */
  publishTelemetry(t: Telemetry): void {
    this.#publish('telemetry', encodePayload(CHANNEL_SCHEMAS.telemetry, t, 'telemetry'), 0, false);
  }

  /** Publishes an event (QoS 1). */
  publishEvent(e: DeviceEvent): void {
    this.#publish('events', encodePayload(CHANNEL_SCHEMAS.events, e, 'event'), 1, false);
  }

  /** Publishes the reported state (QoS 1, retained). */
  publishReported(r: ReportedState): void {
    this.#publish(
      'reported',
      encodePayload(CHANNEL_SCHEMAS.reported, r, 'reported state'),
      1,
      true,
    );
  }

  /** Publishes offline status and disconnects; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#reconnectTimer);
      const client = this.#client;
      if (client === undefined) return;
      if (client.connected) {
        await client
          .publishAsync(deviceTopic(this.#o.deviceId, 'status'), this.#statusPayload(false), {
            qos: 1,
            retain: true,
          })
          .catch(() => undefined);
      }
      await client.endAsync(!client.connected);
    })();
    return this.#closing;
  }

  /** Schedules the next attempt: 1 s doubling to the cap, each delay jittered to 50-100 %. */
  #onClose(client: MqttClient): void {
    if (this.#closing !== undefined) return;
    const { logger } = this.#o;
    const delayMs = this.#backoff.next();
    if (this.#state !== 'disconnected') {
      logger.warn(
        { err: this.#lastError, retryInMs: delayMs },
        this.#state === 'connected'
          ? 'mqtt connection lost; reconnecting with backoff'
          : 'mqtt broker unreachable; retrying with backoff',
      );
      this.#state = 'disconnected';
    }
    try {
      this.#o.onDisconnect?.();
    } catch (err) {
      logger.error({ err: describeError(err) }, 'disconnect listener failed');
    }
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      // Keeping the stores lets MQTT.js resend QoS 1 packets that were in flight.
      if (this.#closing === undefined && !client.connected)
        client.reconnect({
          incomingStore: client.incomingStore,
          outgoingStore: client.outgoingStore,
        });
    }, delayMs);
  }

  #publish(channel: QueuedMessage['channel'], payload: Buffer, qos: 0 | 1, retain: boolean): void {
    const client = this.#client;
    if (this.#closing !== undefined) return;
    // Before start() counts as disconnected: what the agent reports while restoring its model is kept.
    if (client === undefined || !client.connected) {
      this.#enqueue({ channel, payload, qos, retain });
      return;
    }
    this.#send(client, { channel, payload, qos, retain });
  }

  #enqueue(message: QueuedMessage): void {
    if (message.retain) {
      // Only the newest retained document matters.
      const older = this.#offline.findIndex((m) => m.retain && m.channel === message.channel);
      if (older >= 0) this.#offline.splice(older, 1);
    }
    this.#offline.push(message);
    if (this.#offline.length > (this.#o.offlineQueueMax ?? 5000)) {
      this.#offline.shift();
      this.droppedOffline++;
    }
  }

  #flush(client: MqttClient): void {
    for (const message of this.#offline.splice(0)) this.#send(client, message);
  }

  #send(client: MqttClient, m: QueuedMessage): void {
    client.publish(
      deviceTopic(this.#o.deviceId, m.channel),
      m.payload,
      { qos: m.qos, retain: m.retain },
      (err) => {
        if (err) this.#o.logger.debug({ channel: m.channel, err: err.message }, 'publish failed');
      },
    );
  }

  #statusPayload(online: boolean): Buffer {
    return encodePayload(
      CHANNEL_SCHEMAS.status,
      {
        schema: 'linesight.status/v1',
        deviceId: this.#o.deviceId,
        online,
        at: new Date().toISOString(),
      },
      'status',
    );
  }
}
