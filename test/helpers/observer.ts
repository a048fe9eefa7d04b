import mqtt, { type MqttClient } from 'mqtt';
import {
  allDevicesFilter,
  decodePayload,
  CHANNEL_SCHEMAS,
  parseDeviceTopic,
  type DesiredState,
  type DeviceEvent,
  type DeviceStatus,
  type FrameResult,
  type ReportedState,
  type Telemetry,
} from '@linesight/protocol';

/**
 * An admin MQTT client that records what every device publishes: results, events and
 * telemetry windows (all, oldest first), the latest reported state and status, and each
 * desired-state document seen. `invalid` counts messages that did not decode against
 * their channel's schema.
 */
export class FleetObserver {
  readonly results = new Map<string, FrameResult[]>();
  readonly reported = new Map<string, ReportedState>();
  /** Each device's latest telemetry window. */
  readonly telemetry = new Map<string, Telemetry>();
  /** Every telemetry window seen, per device, oldest first. */
  readonly telemetryHistory = new Map<string, Telemetry[]>();
  /** Every event seen, per device, oldest first. */
  readonly events = new Map<string, DeviceEvent[]>();
  /** Each device's latest status (online/offline). */
  readonly status = new Map<string, DeviceStatus>();
  /** Every desired-state document seen, per device, oldest first. */
  readonly desired = new Map<string, DesiredState[]>();
  invalid = 0;
  #client: MqttClient | undefined;

  async start(mqttUrl: string, adminToken: string): Promise<void> {
    const client = await mqtt.connectAsync(mqttUrl, {
      clientId: `observer-${process.pid}`,
      username: 'admin',
      password: adminToken,
      reconnectPeriod: 0,
    });
    this.#client = client;
    client.on('message', (topic, payload) => {
      const parsed = parseDeviceTopic(topic);
      if (!parsed || payload.length === 0) return;
      try {
        if (parsed.channel === 'results') {
          const r = decodePayload(CHANNEL_SCHEMAS.results, payload, 'result');
          const list = this.results.get(parsed.deviceId) ?? [];
          list.push(r);
          this.results.set(parsed.deviceId, list);
        } else if (parsed.channel === 'desired') {
          const list = this.desired.get(parsed.deviceId) ?? [];
          list.push(decodePayload(CHANNEL_SCHEMAS.desired, payload, 'desired'));
          this.desired.set(parsed.deviceId, list);
        } else if (parsed.channel === 'status') {
          this.status.set(
            parsed.deviceId,
            decodePayload(CHANNEL_SCHEMAS.status, payload, 'status'),
          );
        } else if (parsed.channel === 'telemetry') {
          const t = decodePayload(CHANNEL_SCHEMAS.telemetry, payload, 'telemetry');
          this.telemetry.set(parsed.deviceId, t);
          const list = this.telemetryHistory.get(parsed.deviceId) ?? [];
          list.push(t);
          this.telemetryHistory.set(parsed.deviceId, list);
        } else if (parsed.channel === 'events') {
          const list = this.events.get(parsed.deviceId) ?? [];
          list.push(decodePayload(CHANNEL_SCHEMAS.events, payload, 'event'));
          this.events.set(parsed.deviceId, list);
        } else if (parsed.channel === 'reported') {
          this.reported.set(
            parsed.deviceId,
            decodePayload(CHANNEL_SCHEMAS.reported, payload, 'reported'),
          );
        }
      } catch {
        this.invalid++;
      }
    });
    await client.subscribeAsync(
      (['results', 'reported', 'desired', 'telemetry', 'status', 'events'] as const).map((c) =>
        allDevicesFilter(c),
      ),
      { qos: 1 },
    );
  }

  async close(): Promise<void> {
    await this.#client?.endAsync(true);
  }
}
