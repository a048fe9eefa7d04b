// The cloud managing a real Mosquitto's logins through a password_file and an acl_file
// (--mqtt-accounts files): provisioning lets a device in, with its own topics only and under
// its own client id; rotation and decommissioning end its live session (the reload checks
// every session) and close the old secret; readers get their grant only; a restarted cloud
// writes the files again from the registry.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions } from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud } from '@linesight/cloud';
import { deviceTopic } from '@linesight/protocol';
import {
  makePasswordFile,
  mosquittoAvailable,
  startMosquitto,
  type MosquittoBroker,
} from '../helpers/mosquitto-broker.ts';

const adminToken = `files-admin-${process.pid}-token`;
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
      mqttAccounts: 'files',
      mosquittoConfigDir: broker.configDir,
      mosquittoPidFile: broker.pidFile,
      advertisedMqttUrl: broker.deviceUrl,
      dataDir: join(dir, 'cloud'),
      adminToken,
    },
    pino({ level: 'warn' }),
  );
  const urls = await cloud.start();
  api = new CloudApiClient({ baseUrl: urls.http, adminToken });
}

/** Logs in on the devices' listener; resolves with the client, or rejects with the broker's refusal. */
function login(options: IClientOptions) {
  return mqtt.connectAsync(broker.deviceUrl, {
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...options,
  });
}

function closed(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

/** Topics a client receives, in order. */
function received(client: mqtt.MqttClient): string[] {
  const seen: string[] = [];
  client.on('message', (topic) => seen.push(topic));
  return seen;
}

async function until(what: () => boolean, label: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!what()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.runIf(mosquittoAvailable())('the cloud managing Mosquitto password and ACL files', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-files-logins-'));
    broker = await startMosquitto({ accounts: 'files' });
    await startCloud();
  });

  afterAll(async () => {
    await cloud?.close();
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets a provisioned device in with its own topics only, under its own client id', async () => {
    const one = await api.provisionDevice('press-1');
    const two = await api.provisionDevice('press-2');
    expect(one.mqttUrl).toBe(broker.deviceUrl);
    await expect(
      login({ clientId: 'press-1', username: 'press-1', password: 'wrong' }),
    ).rejects.toThrow(/authori[sz]ed/i);
    const device2 = await login({
      clientId: 'press-2',
      username: 'press-2',
      password: two.password,
    });
    let device2Closed = false;
    device2.on('close', () => (device2Closed = true));
    const got2 = received(device2);
    await device2.subscribeAsync(deviceTopic('press-2', 'desired'), { qos: 1 });
    // press-1's login asking for press-2's client id gets its own: press-2's session stays.
    const device1 = await login({
      clientId: 'press-2',
      username: 'press-1',
      password: one.password,
    });
    const got1 = received(device1);
    // Mosquitto grants any subscription and checks each delivery: press-1 gets its own desired only.
    await device1.subscribeAsync(
      [deviceTopic('press-1', 'desired'), deviceTopic('press-2', 'desired')],
      { qos: 1 },
    );
    const operator = await login({ username: 'admin', password: adminToken });
    const watched = received(operator);
    await operator.subscribeAsync('linesight/v1/devices/+/reported', { qos: 1 });
    await operator.publishAsync(deviceTopic('press-2', 'desired'), 'for-2', { qos: 1 });
    await operator.publishAsync(deviceTopic('press-1', 'desired'), 'for-1', { qos: 1 });
    await until(() => got1.length > 0 && got2.length > 0, 'desired states');
    expect(got1).toEqual([deviceTopic('press-1', 'desired')]);
    expect(got2).toEqual([deviceTopic('press-2', 'desired')]);
    expect(device2Closed).toBe(false);
    // A publish on another device's topic is dropped; its own goes through (same session, in order).
    await device1.publishAsync(deviceTopic('press-2', 'reported'), 'forged', { qos: 1 });
    await device1.publishAsync(deviceTopic('press-1', 'reported'), 'own', { qos: 1 });
    await until(() => watched.length > 0, "press-1's reported");
    expect(watched).toEqual([deviceTopic('press-1', 'reported')]);
    for (const c of [device1, device2, operator]) await c.endAsync();
  });

  it('ends the session at rotation and decommissioning, and closes the old secret', async () => {
    const creds = await api.provisionDevice('oven-1');
    const device = await login({
      clientId: 'oven-1',
      username: 'oven-1',
      password: creds.password,
    });
    const ended = closed(device);
    const rotated = await api.rotateDeviceCredentials('oven-1');
    await ended;
    device.end(true);
    await expect(
      login({ clientId: 'oven-1', username: 'oven-1', password: creds.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
    const again = await login({
      clientId: 'oven-1',
      username: 'oven-1',
      password: rotated.password,
    });
    const gone = closed(again);
    await api.decommissionDevice('oven-1');
    await gone;
    again.end(true);
    await expect(
      login({ clientId: 'oven-1', username: 'oven-1', password: rotated.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
  });

  it('gives a reader the results and telemetry of its devices, nothing else; revoking closes it', async () => {
    for (const id of ['kiln-1', 'kiln-2']) await api.provisionDevice(id);
    const auth = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
    const response = await fetch(`${cloud!.urls.http}/v1/mqtt-readers`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'mes', devices: ['kiln-1'] }),
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as { username: string; password: string };
    expect(created.username).toBe('reader@mes');
    const reader = await login({
      clientId: created.username,
      username: created.username,
      password: created.password,
    });
    const got = received(reader);
    await reader.subscribeAsync(['linesight/v1/devices/+/+', '#'], { qos: 1 });
    const operator = await login({ username: 'admin', password: adminToken });
    const watched = received(operator);
    await operator.subscribeAsync(deviceTopic('kiln-1', 'results'), { qos: 1 });
    // A reader never publishes: Mosquitto drops it.
    await reader.publishAsync(deviceTopic('kiln-1', 'results'), 'forged', { qos: 1 });
    for (const topic of [
      deviceTopic('kiln-2', 'results'),
      deviceTopic('kiln-1', 'desired'),
      deviceTopic('kiln-1', 'events'),
      deviceTopic('kiln-1', 'results'),
      deviceTopic('kiln-1', 'telemetry'),
    ])
      await operator.publishAsync(topic, 'x', { qos: 1 });
    await until(() => got.includes(deviceTopic('kiln-1', 'telemetry')), 'telemetry');
    expect([...new Set(got)]).toEqual([
      deviceTopic('kiln-1', 'results'),
      deviceTopic('kiln-1', 'telemetry'),
    ]);
    expect(watched).toEqual([deviceTopic('kiln-1', 'results')]);
    await operator.endAsync();

    const ended = closed(reader);
    const revoked = await fetch(`${cloud!.urls.http}/v1/mqtt-readers/mes`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(revoked.status).toBe(200);
    await ended;
    reader.end(true);
    await expect(
      login({ clientId: created.username, username: created.username, password: created.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
  });

  it('writes the files again from the registry at start (a broker folder that lost them)', async () => {
    const creds = await api.provisionDevice('line-9');
    await cloud!.close();
    await broker.halt();
    // As at the first set-up: the cloud's login only, no ACL.
    const passwords = join(broker.configDir!, 'linesight-passwords');
    makePasswordFile(passwords, broker.username, broker.password);
    await writeFile(join(broker.configDir!, 'linesight-acl'), '');
    await broker.resume();
    await expect(
      login({ clientId: 'line-9', username: 'line-9', password: creds.password }),
    ).rejects.toThrow(/authori[sz]ed/i);
    await startCloud();
    const device = await login({
      clientId: 'line-9',
      username: 'line-9',
      password: creds.password,
    });
    const got = received(device);
    await device.subscribeAsync(deviceTopic('line-9', 'desired'), { qos: 1 });
    const operator = await login({ username: 'admin', password: adminToken });
    await operator.publishAsync(deviceTopic('line-9', 'desired'), 'x', { qos: 1 });
    await until(() => got.length > 0, 'desired');
    for (const c of [device, operator]) await c.endAsync();
  });
});
