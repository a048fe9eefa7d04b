import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { ServiceMqttTls } from '../tls/cloud-tls.ts';
import {
  CHANNEL_SCHEMAS,
  decodePayload,
  describeError,
  deviceTopic,
  parseDeviceTopic,
} from '@linesight/protocol';

/** The per-frame facts the latency gates use. */
export interface FrameSample {
  /** name@version that scored the frame, or null (no model). */
  model: string | null;
  /** When the cloud received the result (ms since epoch). */
  atMs: number;
  inferenceMs: number;
  totalMs: number;
}

/** Collects frame results of chosen devices during a soak. */
export interface LatencySampler {
  /** Starts collecting the results of these devices under `key` (replacing an earlier set). */
  watch(key: string, deviceIds: readonly string[]): Promise<void>;
  /** The frames collected under `key` since watch(), per device. */
  samples(key: string): Map<string, FrameSample[]>;
  /** Stops collecting under `key`. */
  unwatch(key: string): Promise<void>;
}

const MAX_PER_DEVICE = 5000;

/**
 * Subscribes to the per-frame results of the devices of a wave (from before
 * their swap) and of a sample of devices still on the previous version, so
 * latency gates see exactly the frames scored during the soak rather than a
 * device's rolling telemetry window, which still holds minutes of older
 * frames. Only those devices are subscribed, so a large fleet's result
 * stream is never all ingested.
 */
export class ResultSampler implements LatencySampler {
  readonly #o: {
    mqttUrl: string;
    username: string;
    password: string;
    tls?: ServiceMqttTls;
    logger: Logger;
  };
  #client: MqttClient | undefined;
  readonly #watches = new Map<string, Map<string, FrameSample[]>>();
  /** Device -> keys watching it. */
  readonly #byDevice = new Map<string, Set<string>>();
  #closing: Promise<void> | undefined;

  constructor(options: {
    mqttUrl: string;
    username: string;
    password: string;
    tls?: ServiceMqttTls;
    logger: Logger;
  }) {
    this.#o = options;
  }

  /** Connects; resolves once connected. */
  async start(): Promise<void> {
    const client = mqtt.connect(this.#o.mqttUrl, {
      clientId: `linesight-rollouts-${process.pid}-${Date.now().toString(36)}`,
      username: this.#o.username,
      password: this.#o.password,
      ...this.#o.tls,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
    });
    this.#client = client;
    client.on('error', (err) =>
      this.#o.logger.warn({ err: err.message }, 'result sampler mqtt error'),
    );
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
  }

  async watch(key: string, deviceIds: readonly string[]): Promise<void> {
    await this.unwatch(key);
    const frames = new Map<string, FrameSample[]>(deviceIds.map((id) => [id, []]));
    this.#watches.set(key, frames);
    const fresh: string[] = [];
    for (const id of deviceIds) {
      const keys = this.#byDevice.get(id) ?? new Set();
      if (keys.size === 0) fresh.push(deviceTopic(id, 'results'));
      keys.add(key);
      this.#byDevice.set(id, keys);
    }
    if (fresh.length > 0 && this.#client) await this.#client.subscribeAsync(fresh, { qos: 0 });
  }

  samples(key: string): Map<string, FrameSample[]> {
    return this.#watches.get(key) ?? new Map();
  }

  async unwatch(key: string): Promise<void> {
    const frames = this.#watches.get(key);
    if (frames === undefined) return;
    this.#watches.delete(key);
    const gone: string[] = [];
    for (const id of frames.keys()) {
      const keys = this.#byDevice.get(id);
      keys?.delete(key);
      if (keys !== undefined && keys.size === 0) {
        this.#byDevice.delete(id);
        gone.push(deviceTopic(id, 'results'));
      }
    }
    if (gone.length > 0 && this.#client?.connected) await this.#client.unsubscribeAsync(gone);
  }

  /** Disconnects; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#watches.clear();
      this.#byDevice.clear();
      if (this.#client !== undefined) await this.#client.endAsync(true);
    })();
    return this.#closing;
  }

  #onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (parsed === undefined || parsed.channel !== 'results' || payload.length === 0) return;
    const keys = this.#byDevice.get(parsed.deviceId);
    if (keys === undefined) return;
    try {
      const r = decodePayload(CHANNEL_SCHEMAS.results, payload, 'result');
      if (r.deviceId !== parsed.deviceId || r.model === null) return;
      const sample: FrameSample = {
        model: `${r.model.name}@${r.model.version}`,
        atMs: Date.now(),
        inferenceMs: r.latencyMs.inference,
        totalMs: r.latencyMs.total,
      };
      for (const key of keys) {
        const list = this.#watches.get(key)?.get(parsed.deviceId);
        if (list !== undefined && list.length < MAX_PER_DEVICE) list.push(sample);
      }
    } catch (err) {
      this.#o.logger.debug({ err: describeError(err), topic }, 'ignored an invalid result');
    }
  }
}
