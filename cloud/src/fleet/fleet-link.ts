import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  CHANNEL_SCHEMAS,
  DesiredStateSchema,
  LinesightError,
  allDevicesFilter,
  decodePayload,
  deviceTopic,
  encodePayload,
  parseDeviceTopic,
  describeError,
  type DesiredState,
  type DeviceEvent,
} from '@linesight/protocol';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import { DeviceEventLog } from './device-event-log.ts';
import type { ServiceMqttTls } from '../tls/cloud-tls.ts';

/** Options of the cloud's MQTT connection. */
export interface FleetLinkOptions {
  mqttUrl: string;
  username: string;
  password: string;
  /** CA and certificate pin for a TLS broker. */
  tls?: ServiceMqttTls;
  devices: DeviceRegistry;
  logger: Logger;
}

/** Message counters for /metrics. */
export interface FleetLinkStats {
  received: Record<string, number>;
  invalid: Record<string, number>;
  unknownDevice: number;
}

const RECENT_EVENTS = 200;

/**
 * The cloud's MQTT client: ingests device state, telemetry, events and presence
 * into the registry, and publishes retained desired states.
 */
export class FleetLink {
  readonly #options: FleetLinkOptions;
  readonly #log: Logger;
  #client: MqttClient | undefined;
  readonly stats: FleetLinkStats = { received: {}, invalid: {}, unknownDevice: 0 };
  readonly #recentEvents: DeviceEvent[] = [];
  readonly #eventLog: DeviceEventLog;
  #closing: Promise<void> | undefined;

  constructor(options: FleetLinkOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#eventLog = new DeviceEventLog(options.logger);
  }

  /** Connects and subscribes; resolves once subscribed. */
  async start(): Promise<void> {
    const client = mqtt.connect(this.#options.mqttUrl, {
      clientId: `linesight-cloud-${process.pid}-${Date.now().toString(36)}`,
      username: this.#options.username,
      password: this.#options.password,
      ...this.#options.tls,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    this.#client = client;
    client.on('error', (err) => this.#log.warn({ err: err.message }, 'fleet link mqtt error'));
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const filters = (['reported', 'telemetry', 'events', 'status'] as const).map(allDevicesFilter);
    await client.subscribeAsync(filters, { qos: 1 });
  }

  /** Whether the link's MQTT session to the broker is up now (readiness). */
  get connected(): boolean {
    return this.#client?.connected === true;
  }

  /** Publishes a desired state, retained, at QoS 1. */
  async publishDesired(doc: DesiredState): Promise<void> {
    const client = this.#requireClient();
    await client.publishAsync(
      deviceTopic(doc.deviceId, 'desired'),
      encodePayload(DesiredStateSchema, doc, 'desired state'),
      {
        qos: 1,
        retain: true,
      },
    );
  }

  /**
   * Ends a device's live MQTT session, on any broker: connecting with the
   * device's client id takes the session over (MQTT 3.1.1 3.1.4), so the broker
   * drops the device's connection; its reconnect then meets the registry's
   * current credentials.
   */
  async disconnectDevice(deviceId: string): Promise<void> {
    await this.disconnectClient(deviceId);
  }

  /** Ends the live MQTT session of any client id (a device, a reader) by taking it over. */
  async disconnectClient(clientId: string): Promise<void> {
    const takeover = await mqtt.connectAsync(this.#options.mqttUrl, {
      clientId,
      username: this.#options.username,
      password: this.#options.password,
      ...this.#options.tls,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    await takeover.endAsync();
  }

  /** Clears a device's retained topics (desired, reported, status) with empty retained messages. */
  async clearRetained(deviceId: string): Promise<void> {
    const client = this.#requireClient();
    for (const channel of ['desired', 'reported', 'status'] as const)
      await client.publishAsync(deviceTopic(deviceId, channel), Buffer.alloc(0), {
        qos: 1,
        retain: true,
      });
  }

  /** The latest device events, newest last. */
  recentEvents(deviceId?: string): DeviceEvent[] {
    return deviceId === undefined
      ? [...this.#recentEvents]
      : this.#recentEvents.filter((e) => e.deviceId === deviceId);
  }

  /** Disconnects; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        if (this.#client !== undefined) await this.#client.endAsync(true);
      } finally {
        this.#eventLog.close();
      }
    })();
    return this.#closing;
  }

  #requireClient(): MqttClient {
    if (this.#client === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_STARTED', 'fleet link is not started');
    return this.#client;
  }

  #onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (parsed === undefined) return;
    const { deviceId, channel } = parsed;
    // An empty retained message clears a topic (decommissioning): nothing to ingest.
    if (payload.length === 0) return;
    this.stats.received[channel] = (this.stats.received[channel] ?? 0) + 1;
    const devices = this.#options.devices;
    try {
      if (!devices.has(deviceId)) {
        this.stats.unknownDevice++;
        return;
      }
      switch (channel) {
        case 'reported': {
          const doc = decodePayload(CHANNEL_SCHEMAS.reported, payload, 'reported state');
          this.#checkOwner(doc.deviceId, deviceId);
          devices.setReported(deviceId, doc);
          break;
        }
        case 'telemetry': {
          const doc = decodePayload(CHANNEL_SCHEMAS.telemetry, payload, 'telemetry');
          this.#checkOwner(doc.deviceId, deviceId);
          devices.setTelemetry(deviceId, doc);
          break;
        }
        case 'events': {
          const doc = decodePayload(CHANNEL_SCHEMAS.events, payload, 'event');
          this.#checkOwner(doc.deviceId, deviceId);
          this.#recentEvents.push(doc);
          if (this.#recentEvents.length > RECENT_EVENTS) this.#recentEvents.shift();
          this.#eventLog.write(doc);
          break;
        }
        case 'status': {
          const doc = decodePayload(CHANNEL_SCHEMAS.status, payload, 'status');
          this.#checkOwner(doc.deviceId, deviceId);
          devices.setOnline(deviceId, doc.online, doc.at);
          break;
        }
        default:
          break;
      }
    } catch (err) {
      this.stats.invalid[channel] = (this.stats.invalid[channel] ?? 0) + 1;
      this.#log.warn(
        { deviceId, channel, err: describeError(err) },
        'dropped invalid device message',
      );
    }
  }

  #checkOwner(claimed: string, topicDevice: string): void {
    if (claimed !== topicDevice) {
      throw new Error(`payload names device ${claimed} but arrived on ${topicDevice}'s topic`);
    }
  }
}
