import mqtt, { type MqttClient } from 'mqtt';
import {
  decodePayload,
  CHANNEL_SCHEMAS,
  parseDeviceTopic,
  type DesiredState,
  type FrameResult,
  type ReportedState,
} from '@linesight/protocol';

/** An admin MQTT client that records every device's results and latest reported state. */
export class FleetObserver {
  readonly results = new Map<string, FrameResult[]>();
  readonly reported = new Map<string, ReportedState>();
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
      [
        'linesight/v1/devices/+/results',
        'linesight/v1/devices/+/reported',
        'linesight/v1/devices/+/desired',
      ],
      { qos: 1 },
    );
  }

  async close(): Promise<void> {
    await this.#client?.endAsync(true);
  }
}
