import mqtt, { type MqttClient } from 'mqtt';
import { CHANNEL_SCHEMAS, decodePayload } from '@linesight/protocol';
import type { LineVerdict } from './verdict-availability.ts';

/** The agents' default plant topic: `linesight/line/{deviceId}/verdicts`. */
const PLANT_FILTER = 'linesight/line/+/verdicts';

/**
 * The line's side of the plant MQTT broker: a QoS 1 subscriber that keeps
 * every verdict each device's agent wrote, with the time it arrived. It
 * outlives agent processes, so verdicts of every process of a device are kept.
 */
export class LineTap {
  readonly #verdicts = new Map<string, LineVerdict[]>();
  /** Payloads that did not decode as a verdict (must stay 0). */
  invalid = 0;
  #client: MqttClient | undefined;

  async start(plantBrokerUrl: string): Promise<void> {
    const client = await mqtt.connectAsync(plantBrokerUrl, {
      clientId: `line-tap-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      reconnectPeriod: 0,
    });
    this.#client = client;
    client.on('message', (topic, payload) => {
      const receivedAtMs = Date.now();
      const deviceId = topic.split('/')[2] ?? '';
      try {
        const result = decodePayload(CHANNEL_SCHEMAS.results, payload, 'plant verdict');
        const list = this.#verdicts.get(deviceId) ?? [];
        list.push({ result, receivedAtMs });
        this.#verdicts.set(deviceId, list);
      } catch {
        this.invalid++;
      }
    });
    await client.subscribeAsync(PLANT_FILTER, { qos: 1 });
  }

  /** Verdicts received for a device, in receipt order. */
  of(deviceId: string): readonly LineVerdict[] {
    return this.#verdicts.get(deviceId) ?? [];
  }

  /** The newest verdict received for a device. */
  last(deviceId: string): LineVerdict | undefined {
    return this.#verdicts.get(deviceId)?.at(-1);
  }

  /** Resolves once each device's line got a verdict of a frame captured at or after `atMs`. */
  caughtUp(deviceIds: readonly string[], atMs: number): boolean {
    return deviceIds.every((id) =>
      this.of(id).some((v) => Date.parse(v.result.capturedAt) >= atMs),
    );
  }

  async close(): Promise<void> {
    await this.#client?.endAsync(true);
    this.#client = undefined;
  }
}
