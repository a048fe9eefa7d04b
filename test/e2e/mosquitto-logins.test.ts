// The cloud managing a real Mosquitto's logins (dynamic security) through its REST API:
// provisioning opens the broker to a device under its own client id only, rotation and
// decommissioning end its session and close the old secret, readers reach only what they
// were granted, and a restarted cloud finds the broker's logins as it left them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions } from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud } from '@linesight/cloud';
import { allDevicesFilter, deviceTopic } from '@linesight/protocol';
import {
  mosquittoAvailable,
  startMosquitto,
  type MosquittoBroker,
} from '../helpers/mosquitto-broker.ts';

const adminToken = `logins-admin-${process.pid}-token`;
let dir: string;
let broker: MosquittoBroker;
let cloud: Cloud | undefined;
let api: CloudApiClient;

async function startCloud(): Promise<void> {
  cloud = new Cloud(
    {
      httpPort: 0,
      mqttUrl: broker.url,
      mqttPassword: broker.password,
      dataDir: join(dir, 'cloud'),
      adminToken,
    },
    pino({ level: 'warn' }),
  );
  const urls = await cloud.start();
  api = new CloudApiClient({ baseUrl: urls.http, adminToken });
}

/** Logs in; resolves with the client, or rejects with the broker's refusal. */
function login(options: IClientOptions) {
  return mqtt.connectAsync(broker.url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
}

/** The QoS granted per filter (128 = refused). */
async function grants(client: mqtt.MqttClient, filters: string[]): Promise<number[]> {
  return client.subscribeAsync(filters, { qos: 1 }).then(
    (granted) => granted.map((g) => g.qos),
    (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
  );
}

function closed(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

describe.runIf(mosquittoAvailable())('the cloud managing Mosquitto logins', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-logins-'));
    broker = await startMosquitto();
    await startCloud();
  });

  afterAll(async () => {
    await cloud?.close();
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets a provisioned device in under its own client id only; rotation and decommissioning end its session', async () => {
    const creds = await api.provisionDevice('press-1');
    const device = await login({
      clientId: 'press-1',
      username: creds.username,
      password: creds.password,
    });
    expect(await grants(device, [deviceTopic('press-1', 'desired')])).toEqual([1]);
    // Another client id with the device's login could take over someone else's session: refused.
    await expect(
      login({ clientId: 'press-2', username: creds.username, password: creds.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
    await expect(
      login({ clientId: 'press-1', username: 'press-1', password: 'wrong' }),
    ).rejects.toThrow(/authori[sz]ed/i);

    const ended = closed(device);
    const rotated = await api.rotateDeviceCredentials('press-1');
    await ended;
    await expect(
      login({ clientId: 'press-1', username: 'press-1', password: creds.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
    const again = await login({
      clientId: 'press-1',
      username: 'press-1',
      password: rotated.password,
    });

    const gone = closed(again);
    await api.decommissionDevice('press-1');
    await gone;
    await expect(
      login({ clientId: 'press-1', username: 'press-1', password: rotated.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
  });

  it('gives a reader the results and telemetry of its devices, nothing else; revoking closes it', async () => {
    for (const id of ['oven-1', 'oven-2']) await api.provisionDevice(id);
    const auth = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
    const created = (await (
      await fetch(`${cloud!.urls.http}/v1/mqtt-readers`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ name: 'mes', devices: ['oven-1'] }),
      })
    ).json()) as { username: string; password: string };
    const reader = await login({
      clientId: created.username,
      username: created.username,
      password: created.password,
    });
    expect(
      await grants(reader, [
        deviceTopic('oven-1', 'results'),
        deviceTopic('oven-1', 'telemetry'),
        deviceTopic('oven-2', 'results'),
        deviceTopic('oven-1', 'desired'),
        allDevicesFilter('results'),
        '#',
      ]),
    ).toEqual([1, 1, 128, 128, 128, 128]);
    // A reader never publishes: Mosquitto drops the message; the device's topic stays empty.
    const watcher = await login({ username: 'admin', password: adminToken });
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync(
      [deviceTopic('oven-1', 'results'), deviceTopic('oven-1', 'events')],
      {
        qos: 1,
      },
    );
    await reader.publishAsync(deviceTopic('oven-1', 'results'), 'forged', { qos: 1 });
    // The operators' login may publish: its message arrives, so the reader's would have too.
    await watcher.publishAsync(deviceTopic('oven-1', 'events'), 'marker', { qos: 1 });
    const deadline = Date.now() + 30_000;
    while (!seen.includes(deviceTopic('oven-1', 'events')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([deviceTopic('oven-1', 'events')]);
    await watcher.endAsync();

    const ended = closed(reader);
    const revoked = await fetch(`${cloud!.urls.http}/v1/mqtt-readers/mes`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(revoked.status).toBe(200);
    await ended;
    await expect(
      login({ clientId: created.username, username: created.username, password: created.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
  });

  it('finds the logins in the broker after a cloud restart, and a broker restart keeps them', async () => {
    const creds = await api.provisionDevice('kiln-1');
    await cloud!.close();
    await broker.halt();
    await broker.resume();
    await startCloud();
    const device = await login({
      clientId: 'kiln-1',
      username: creds.username,
      password: creds.password,
    });
    expect(await grants(device, [deviceTopic('kiln-1', 'desired')])).toEqual([1]);
    await device.endAsync();
  });
});
