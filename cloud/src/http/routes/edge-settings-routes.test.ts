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
import { Cloud } from '../../cloud.ts';

let dir: string;
let cloud: Cloud;
let api: CloudApiClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-edge-settings-'));
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
  await cloud.start();
  api = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: cloud.adminToken.token });
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

/** The retained desired-state document the device receives, read with its own credentials. */
async function desiredAsDeviceSees(id: string, password: string, revision: number) {
  const client = await mqtt.connectAsync(cloud.urls.mqtt, {
    clientId: id,
    username: id,
    password,
    reconnectPeriod: 0,
  });
  try {
    const doc = new Promise<DesiredState>((resolve) =>
      client.on('message', (_topic, payload) => {
        const d = decodePayload(CHANNEL_SCHEMAS.desired, payload, 'desired');
        if (d.revision >= revision) resolve(d);
      }),
    );
    await client.subscribeAsync(deviceTopic(id, 'desired'), { qos: 1 });
    return await doc;
  } finally {
    await client.endAsync(true);
  }
}

describe('/v1/devices/:id/edge-data', () => {
  it('sets the sampling policy in the signed desired state and shows it', async () => {
    const device = await api.provisionDevice('edge-set-1');
    expect(await api.getEdgeSettings('edge-set-1')).toEqual({
      deviceId: 'edge-set-1',
      desired: null,
      revision: null,
      reported: null,
    });
    const settings = { windowSec: 30, sampling: { randomShare: 0.05, jpegQuality: 80 } };
    const view = await api.setEdgeSettings('edge-set-1', settings);
    expect(view).toMatchObject({ desired: settings, reported: null });
    expect(view.revision).toBeGreaterThanOrEqual(1);
    const doc = await desiredAsDeviceSees('edge-set-1', device.password, view.revision ?? 1);
    expect(doc.edgeData).toEqual(settings);
    expect(doc.model).toBeNull();
    expect(doc.signature).toBeDefined();
    // A second change replaces the first and keeps the rest of the document.
    const next = await api.setEdgeSettings('edge-set-1', { sampling: { defects: false } });
    expect(next.desired).toEqual({ sampling: { defects: false } });
    expect(next.revision).toBe((view.revision ?? 0) + 1);
  });

  it('refuses a policy out of range, an unknown device, and a viewer', async () => {
    await api.provisionDevice('edge-set-2');
    await expect(
      api.setEdgeSettings('edge-set-2', { sampling: { randomShare: 2 } }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(api.setEdgeSettings('no-such-device', { windowSec: 10 })).rejects.toMatchObject({
      status: 404,
    });
    const { token } = await api.createToken('edge-viewer', 'viewer');
    const viewer = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: token });
    expect((await viewer.getEdgeSettings('edge-set-2')).desired).toBeNull();
    await expect(viewer.setEdgeSettings('edge-set-2', { windowSec: 10 })).rejects.toMatchObject({
      status: 403,
    });
  });
});
