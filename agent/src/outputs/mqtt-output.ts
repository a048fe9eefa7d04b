import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { CHANNEL_SCHEMAS, LinesightError, describeError, encodePayload } from '@linesight/protocol';
import { fillTemplate, type LineOutput, type OutputVerdict, type WriteOutcome } from './output.ts';
import type { MqttOutputConfig } from './outputs-config.ts';

/**
 * Publishes each verdict (the result JSON, as on the cloud's results topic)
 * to a broker on the plant network. Its own client, independent of the cloud
 * link; it reconnects by itself, and while it is disconnected writes fail at
 * once so the runner counts them and retries with backoff instead of letting
 * MQTT.js queue without bound. Written = handed to the socket (QoS 0) or
 * acknowledged by the broker (QoS 1 and 2).
 */
export class MqttOutput implements LineOutput {
  readonly kind = 'mqtt';
  readonly #config: MqttOutputConfig;
  readonly #deviceId: string;
  readonly #log: Logger;
  #client: MqttClient | undefined;
  #connects = 0;
  #closing: Promise<void> | undefined;

  constructor(config: MqttOutputConfig, deviceId: string, logger: Logger) {
    this.#config = config;
    this.#deviceId = deviceId;
    this.#log = logger;
  }

  get reconnects(): number {
    return Math.max(0, this.#connects - 1);
  }

  start(): void {
    const c = this.#config;
    const client = mqtt.connect(c.url, {
      clientId: c.clientId ?? `linesight-${this.#deviceId}-line`,
      ...(c.username === undefined ? {} : { username: c.username }),
      ...(c.password === undefined ? {} : { password: c.password }),
      clean: true,
      keepalive: 15,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      queueQoSZero: false,
    });
    this.#client = client;
    client.on('error', (err) => this.#log.warn({ err: err.message }, 'plant mqtt error'));
    client.on('connect', () => {
      this.#connects++;
      this.#log.info({ url: redact(c.url) }, 'plant mqtt connected');
    });
  }

  async write(batch: readonly OutputVerdict[]): Promise<WriteOutcome> {
    const client = this.#client;
    if (client === undefined || !client.connected) {
      throw new LinesightError('ERR_AGENT_OUTPUT', 'plant mqtt broker not connected', {
        details: { url: redact(this.#config.url) },
      });
    }
    for (const { result } of batch) {
      const payload = encodePayload(CHANNEL_SCHEMAS.results, result, 'result');
      await client.publishAsync(fillTemplate(this.#config.topic, result), payload, {
        qos: this.#config.qos,
        retain: this.#config.retain,
      });
    }
    return 'written';
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const client = this.#client;
      if (client === undefined) return;
      try {
        await client.endAsync(!client.connected);
      } catch (err) {
        this.#log.warn({ err: describeError(err) }, 'plant mqtt close failed');
      }
    })();
    return this.#closing;
  }
}

/** The URL without credentials, for logs. */
function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
