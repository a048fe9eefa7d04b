import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient, CloudApiError } from '@linesight/api-client';
import { deviceTopic, encodePayload, isLinesightError, CHANNEL_SCHEMAS } from '@linesight/protocol';
import { Cloud } from './cloud.ts';

let dir: string;
let cloud: Cloud;
let api: CloudApiClient;
const clients: MqttClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-cloud-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: dir },
    pino({ level: process.env.TEST_LOG ?? 'silent' }),
  );
  const urls = await cloud.start();
  api = new CloudApiClient({ baseUrl: urls.http, adminToken: cloud.adminToken.token });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

async function connect(clientId: string, username: string, password: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(cloud.urls.mqtt, {
    clientId,
    username,
    password,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  clients.push(client);
  client.on('error', () => undefined);
  return client;
}

function statusPayload(deviceId: string) {
  return encodePayload(
    CHANNEL_SCHEMAS.status,
    { schema: 'linesight.status/v1', deviceId, online: true, at: new Date().toISOString() },
    'status',
  );
}

describe('cloud', () => {
  it('answers ERR_CLOUD_NOT_STARTED for every part asked for before start()', () => {
    const idle = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir });
    for (const read of [
      () => idle.urls,
      () => idle.blobs,
      () => idle.advertised,
      () => idle.adminToken,
    ]) {
      let caught: unknown;
      try {
        read();
      } catch (err) {
        caught = err;
      }
      expect(isLinesightError(caught, 'ERR_CLOUD_NOT_STARTED')).toBe(true);
    }
  });

  it('creates an admin token file with mode 0600', async () => {
    expect(cloud.adminToken.source).toBe('created');
    const s = await stat(join(dir, 'admin-token'));
    expect(s.mode & 0o777).toBe(0o600);
  });

  it('keeps the registry database (with its WAL) and the signing keys readable by the owner only', async () => {
    for (const file of ['registry.sqlite', 'registry.sqlite-wal', 'keys/ring.json'])
      expect([file, (await stat(join(dir, file))).mode & 0o777]).toEqual([file, 0o600]);
    expect((await stat(join(dir, 'keys'))).mode & 0o777).toBe(0o700);
  });

  it('serves health, metrics and the OpenAPI document without a token', async () => {
    const health = await fetch(`${cloud.urls.http}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(metrics).toContain('# TYPE linesight_devices gauge');
    const doc = (await (await fetch(`${cloud.urls.http}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/models', '/v1/devices', '/v1/rollouts']),
    );
    expect((await fetch(`${cloud.urls.http}/docs/`)).status).toBe(200);
  });

  it('refuses API calls without the admin token', async () => {
    const res = await fetch(`${cloud.urls.http}/v1/devices`);
    expect(res.status).toBe(401);
    const wrong = new CloudApiClient({
      baseUrl: cloud.urls.http,
      adminToken: 'not-the-token-at-all',
    });
    const refused = await wrong.listDevices().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(CloudApiError);
    expect(refused).toMatchObject({ status: 401, code: 'ERR_CLOUD_UNAUTHORIZED' });
  });

  it('answers bad input with 4xx and a message', async () => {
    await expect(api.provisionDevice('bad/id')).rejects.toMatchObject({ status: 400 });
    const res = await fetch(`${cloud.urls.http}/v1/models`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${cloud.adminToken.token}`,
        'content-type': 'application/json',
      },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/multipart/);
    await expect(
      api.publishModel({ name: 'm', version: '1.0.0', onnx: new Uint8Array([1, 2, 3]) }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(api.createRollout({ model: 'nope', version: '1.0.0' })).rejects.toMatchObject({
      status: 404,
    });
  });

  it('refuses reserved device ids with 400 and says why', async () => {
    for (const id of ['admin', 'linesight-cloud', 'linesight-rollouts-1'])
      await expect(api.provisionDevice(id)).rejects.toMatchObject({
        status: 400,
        message: expect.stringMatching(/reserved/),
      });
  });

  it('provisions a device once and refuses a duplicate', async () => {
    const d = await api.provisionDevice('acl-a');
    expect(d.password.length).toBeGreaterThan(30);
    expect(d.trustedKeys).toHaveLength(1);
    await expect(api.provisionDevice('acl-a')).rejects.toMatchObject({ status: 409 });
  });

  it("stops one device's credentials from touching another device's topics", async () => {
    const a = await api.listDevices().then(() => api.provisionDevice('acl-b'));
    const b = await api.provisionDevice('acl-c');
    // Wrong password and a foreign client id are refused outright.
    await expect(
      mqtt.connectAsync(cloud.urls.mqtt, {
        clientId: 'acl-b',
        username: 'acl-b',
        password: 'wrong',
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
    await expect(
      mqtt.connectAsync(cloud.urls.mqtt, {
        clientId: 'acl-c',
        username: 'acl-b',
        password: a.password,
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();

    const observer = await connect('observer', 'admin', cloud.adminToken.token);
    const seen: string[] = [];
    observer.on('message', (topic) => seen.push(topic));
    await observer.subscribeAsync('linesight/v1/devices/+/status', { qos: 1 });

    const devB = await connect('acl-b', 'acl-b', a.password);
    // The broker grants no subscription to another device's desired state (SUBACK 0x80).
    await expect(devB.subscribeAsync(deviceTopic('acl-c', 'desired'), { qos: 1 })).rejects.toThrow(
      /Subscribe error/,
    );

    // Its own topic goes through...
    await devB.publishAsync(deviceTopic('acl-b', 'status'), statusPayload('acl-b'), { qos: 1 });
    // ...another device's does not: the broker drops the connection instead.
    const closed = new Promise<void>((resolve) => devB.once('close', () => resolve()));
    devB.publish(deviceTopic('acl-c', 'status'), statusPayload('acl-c'), { qos: 1 });
    await closed;

    // Device C itself still can; the observer sees B's and C's own messages but never B's forgery.
    const devC = await connect('acl-c', 'acl-c', b.password);
    await devC.publishAsync(deviceTopic('acl-c', 'status'), statusPayload('acl-c'), { qos: 1 });
    const deadline = Date.now() + 5000;
    while (seen.filter((t) => t.includes('acl-c')).length < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(seen.filter((t) => t === deviceTopic('acl-b', 'status'))).toHaveLength(1);
    expect(seen.filter((t) => t === deviceTopic('acl-c', 'status'))).toHaveLength(1);
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(metrics).toMatch(/linesight_mqtt_denied_total\{action="publish"\} [1-9]/);
  });

  it('records a second login with a live device id in the audit log and counts it', async () => {
    const d = await api.provisionDevice('clone-a');
    const first = await connect('clone-a', 'clone-a', d.password);
    const kicked = new Promise<void>((resolve) => first.once('close', () => resolve()));
    await connect('clone-a', 'clone-a', d.password);
    await kicked;
    const audit = (await (
      await fetch(`${cloud.urls.http}/v1/audit`, {
        headers: { authorization: `Bearer ${cloud.adminToken.token}` },
      })
    ).json()) as { actor: string; action: string; subject: string }[];
    expect(audit).toContainEqual(
      expect.objectContaining({
        actor: 'broker',
        action: 'device.session_taken_over',
        subject: 'clone-a',
      }),
    );
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(metrics).toMatch(/^linesight_mqtt_session_takeovers_total 1$/m);
  });
});
