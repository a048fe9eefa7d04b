import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import {
  CHANNEL_SCHEMAS,
  decodePayload,
  deviceTopic,
  type DesiredState,
} from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { meanScoreOnnx } from '@linesight/testkit/onnx';
import { Cloud } from '../cloud.ts';

// One publish a second: a wave of 8 takes 7 s to publish, far longer than POST /v1/rollouts.
const RATE_PER_SEC = 1;
const ids = Array.from({ length: 8 }, (_, i) => `bg-${i}`);

let dir: string;
let cloud: Cloud | undefined;
const passwords = new Map<string, string>();

function startCloud(): Promise<Cloud> {
  const c = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: dir, desiredPublishRatePerSec: RATE_PER_SEC },
    pino({ level: process.env.TEST_LOG ?? 'silent' }),
  );
  cloud = c;
  return c.start().then(() => c);
}

function apiOf(c: Cloud): CloudApiClient {
  return new CloudApiClient({ baseUrl: c.urls.http, adminToken: c.adminToken.token });
}

/** The retained desired document a device gets on subscribing, read with its own credentials. */
async function desiredAsDeviceSees(c: Cloud, id: string, version: string): Promise<DesiredState> {
  const client = await mqtt.connectAsync(c.urls.mqtt, {
    clientId: id,
    username: id,
    password: passwords.get(id),
    reconnectPeriod: 0,
  });
  client.on('error', () => undefined);
  try {
    const doc = new Promise<DesiredState>((resolve) =>
      client.on('message', (_topic, payload) => {
        const d = decodePayload(CHANNEL_SCHEMAS.desired, payload, 'desired');
        if (d.model?.signed.manifest.version === version) resolve(d);
      }),
    );
    await client.subscribeAsync(deviceTopic(id, 'desired'), { qos: 1 });
    return await doc;
  } finally {
    await client.endAsync(true);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-rollout-bg-'));
  const c = await startCloud();
  const api = apiOf(c);
  await api.publishModel({
    name: 'm',
    version: '1.0.0',
    onnx: meanScoreOnnx({ side: 16, threshold: 0.5 }),
  });
  for (const d of await api.provisionDevices(ids.map((id) => ({ id }))))
    passwords.set(d.deviceId, d.password);
});

afterAll(async () => {
  await cloud?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('POST /v1/rollouts with paced desired-state publishes', () => {
  it('answers once stored, says how far publishing is, and a restart mid-publish still reaches every device', async () => {
    const first = cloud as Cloud;
    const created = await apiOf(first).createRollout({ model: 'm', version: '1.0.0' });
    expect(created.state).toBe('in_progress');
    expect(created.publish.toPublish).toBe(ids.length);
    // Answered before the wave's publishes (the old route answered only after all 8: 7 s).
    expect(created.publish.published).toBeLessThan(ids.length);

    // The cloud stops mid-publish; a new one on the same data folder republishes what is stored.
    await first.close();
    const second = await startCloud();
    const api = apiOf(second);
    // Every device, the last in the publish order too, gets the version from the new broker.
    for (const id of ids) {
      const doc = await desiredAsDeviceSees(second, id, '1.0.0');
      expect(doc.deviceId).toBe(id);
    }
    const status = await eventually(
      async () => {
        const s = await api.getRollout(created.id);
        return s.publish.published === ids.length && s;
      },
      { what: 'every publish acknowledged in the rollout status', timeoutMs: 30_000 },
    );
    expect(status.publish.toPublish).toBe(ids.length);
  });
});
