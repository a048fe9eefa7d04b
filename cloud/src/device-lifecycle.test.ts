import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient, CloudApiError } from '@linesight/api-client';
import { CHANNEL_SCHEMAS, deviceTopic, encodePayload } from '@linesight/protocol';
import type { Cloud } from './cloud.ts';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';

let testCloud: TestCloud;
let cloud: Cloud;
let api: CloudApiClient;
const clients: MqttClient[] = [];

beforeAll(async () => {
  testCloud = await startTestCloud();
  ({ cloud, api } = testCloud);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await testCloud.close();
});

async function connect(id: string, password: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(cloud.urls.mqtt, {
    clientId: id,
    username: id,
    password,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

async function refused(id: string, password: string): Promise<boolean> {
  return connect(id, password).then(
    () => false,
    () => true,
  );
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) resolve();
    client.once('close', () => resolve());
  });
}

/** Retained messages under a device's topics, as a fresh admin subscriber sees them. */
async function retained(deviceId: string): Promise<string[]> {
  const admin = await mqtt.connectAsync(cloud.urls.mqtt, {
    clientId: `admin-probe-${Date.now()}`,
    username: 'admin',
    password: cloud.adminToken.token,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  clients.push(admin);
  const topics: string[] = [];
  admin.on('message', (topic, payload, packet) => {
    if (packet.retain && payload.length > 0) topics.push(topic);
  });
  await admin.subscribeAsync(`${deviceTopic(deviceId, 'status').replace(/\/status$/, '')}/#`, {
    qos: 1,
  });
  // Retained messages arrive right after SUBACK; a round trip through the broker marks their end.
  const marker = `${deviceTopic(deviceId, 'status').replace(/\/status$/, '')}/probe-end`;
  await new Promise<void>((resolve) => {
    admin.on('message', (topic) => topic === marker && resolve());
    void admin.publishAsync(marker, 'x', { qos: 1 });
  });
  await admin.endAsync();
  return topics;
}

describe('device credential rotation', () => {
  it('ends the live session, refuses the old secret and accepts the new one', async () => {
    const first = await api.provisionDevice('rot-1');
    const live = await connect('rot-1', first.password);
    const dropped = closed(live);
    const rotated = await api.rotateDeviceCredentials('rot-1');
    await dropped;
    expect(rotated).toMatchObject({ deviceId: 'rot-1', mqttUrl: cloud.urls.mqtt });
    expect(rotated.password).not.toBe(first.password);
    expect(await refused('rot-1', first.password)).toBe(true);
    expect((await connect('rot-1', rotated.password)).connected).toBe(true);
    const audit = (await (
      await fetch(`${cloud.urls.http}/v1/audit?action=device.rotate_credentials`, {
        headers: { authorization: `Bearer ${cloud.adminToken.token}` },
      })
    ).json()) as { subject: string }[];
    expect(audit.map((a) => a.subject)).toEqual(['rot-1']);
  });
});

describe('device decommissioning', () => {
  it('revokes credentials, ends the session, clears retained topics and records it', async () => {
    const { password } = await api.provisionDevice('dec-1');
    const live = await connect('dec-1', password);
    await live.publishAsync(
      deviceTopic('dec-1', 'status'),
      encodePayload(
        CHANNEL_SCHEMAS.status,
        {
          schema: 'linesight.status/v1',
          deviceId: 'dec-1',
          online: true,
          at: new Date().toISOString(),
        },
        'status',
      ),
      { qos: 1, retain: true },
    );
    expect(await retained('dec-1')).toContain(deviceTopic('dec-1', 'status'));
    const dropped = closed(live);
    expect(await api.decommissionDevice('dec-1')).toEqual({
      deviceId: 'dec-1',
      decommissioned: true,
    });
    await dropped;
    expect(await refused('dec-1', password)).toBe(true);
    expect(await retained('dec-1')).toEqual([]);
    await expect(api.getDevice('dec-1')).rejects.toSatisfy(
      (e) => e instanceof CloudApiError && e.status === 404,
    );
    const audit = (await (
      await fetch(`${cloud.urls.http}/v1/audit?action=device.decommission`, {
        headers: { authorization: `Bearer ${cloud.adminToken.token}` },
      })
    ).json()) as { subject: string; actor: string }[];
    expect(audit).toEqual([expect.objectContaining({ subject: 'dec-1', actor: 'admin' })]);
    // The id can be provisioned again, as a new device.
    expect((await api.provisionDevice('dec-1')).deviceId).toBe('dec-1');
  });

  it('answers 404 for a device that does not exist', async () => {
    await expect(api.decommissionDevice('nobody')).rejects.toSatisfy(
      (e) => e instanceof CloudApiError && e.status === 404,
    );
  });
});

describe('operator tokens', () => {
  it('lists and revokes named tokens; a revoked token stops working', async () => {
    const { token } = await api.createToken('alice');
    const alice = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: token });
    await alice.listDevices();
    expect(await api.listTokens()).toEqual([
      expect.objectContaining({ actor: 'alice', createdBy: 'admin' }),
    ]);
    await expect(alice.revokeToken('alice')).rejects.toSatisfy(
      (e) => e instanceof CloudApiError && e.status === 403,
    );
    expect(await api.revokeToken('alice')).toEqual({ actor: 'alice', revoked: true });
    await expect(alice.listDevices()).rejects.toSatisfy(
      (e) => e instanceof CloudApiError && e.status === 401,
    );
    expect(await api.listTokens()).toEqual([]);
  });
});

describe('token roles', () => {
  async function call(token: string, method: string, path: string, body?: unknown) {
    const response = await fetch(`${cloud.urls.http}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('lets a viewer read, an operator change models and rollouts, and only an admin manage devices and tokens', async () => {
    const viewer = (await api.createToken('vic', 'viewer')).token;
    const operator = (await api.createToken('ola', 'operator')).token;
    const admin = (await api.createToken('ada', 'admin')).token;

    // Reads: every role.
    for (const token of [viewer, operator, admin])
      expect((await call(token, 'GET', '/v1/devices')).status).toBe(200);
    expect((await call(viewer, 'GET', '/v1/dashboard/session')).body).toMatchObject({
      actor: 'vic',
      role: 'viewer',
      canWrite: false,
    });
    expect((await call(operator, 'GET', '/v1/dashboard/session')).body).toMatchObject({
      role: 'operator',
      canWrite: true,
    });

    // Changes: a viewer is refused with 403 naming the role it lacks, before its body is read.
    const refused = await call(viewer, 'POST', '/v1/rollouts', {});
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(
      /needs the operator role; the token of vic has the viewer role/,
    );
    // An operator gets past the role check (the empty body is then refused for what it is).
    expect((await call(operator, 'POST', '/v1/rollouts', {})).status).toBe(400);
    // Central inference is a read: a viewer may ask (no model is registered here).
    expect((await call(viewer, 'POST', '/v1/predict', {})).status).not.toBe(403);

    // Devices, keys and tokens: admin only.
    expect((await call(operator, 'POST', '/v1/devices', { id: 'role-1' })).status).toBe(403);
    expect((await call(operator, 'POST', '/v1/keys/rotate')).status).toBe(403);
    expect((await call(operator, 'GET', '/v1/tokens')).status).toBe(403);
    expect((await call(admin, 'POST', '/v1/devices', { id: 'role-1' })).status).toBe(201);
    expect((await call(admin, 'POST', '/v1/tokens', { actor: 'zed', role: 'root' })).status).toBe(
      400,
    );
    const made = await call(admin, 'POST', '/v1/tokens', { actor: 'zed', role: 'viewer' });
    expect(made.status).toBe(201);
    expect(made.body.role).toBe('viewer');
    expect(await api.listTokens()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: 'vic', role: 'viewer' }),
        expect.objectContaining({ actor: 'ola', role: 'operator' }),
        expect.objectContaining({ actor: 'ada', role: 'admin' }),
        expect.objectContaining({ actor: 'zed', role: 'viewer', createdBy: 'ada' }),
      ]),
    );
    for (const actor of ['vic', 'ola', 'ada', 'zed']) await api.revokeToken(actor);
    expect((await call(viewer, 'GET', '/v1/devices')).status).toBe(401);
  });
});
