// Read-only MQTT credentials against the real embedded broker: a reader gets
// results and telemetry of the devices it is granted and nothing else.
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient, CloudApiError } from '@linesight/api-client';
import { deviceTopic } from '@linesight/protocol';
import type { Cloud } from '../cloud.ts';
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

async function connect(clientId: string, username: string, password: string) {
  const client = await mqtt.connectAsync(cloud.urls.mqtt, {
    clientId,
    username,
    password,
    reconnectPeriod: 0,
    protocolVersion: 4,
    connectTimeout: 10_000,
  });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

/** The granted QoS of one subscription; 128 is a refusal. */
async function granted(client: MqttClient, filter: string): Promise<number | undefined> {
  try {
    const [grant] = await client.subscribeAsync(filter, { qos: 1 });
    return grant?.qos;
  } catch (err) {
    // MQTT.js rejects a SUBACK that refuses (128); the packet says so.
    const refused = (err as { packet?: { granted?: (number | { qos: number })[] } }).packet
      ?.granted?.[0];
    if (refused === undefined) throw err;
    return typeof refused === 'number' ? refused : refused.qos;
  }
}

function nextMessage(client: MqttClient, topic: string): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve(payload.toString('utf8'));
    };
    client.on('message', onMessage);
  });
}

describe('read-only MQTT credentials', () => {
  it('lets a reader subscribe to results and telemetry of its devices only, never publish, and ends it on revocation', async () => {
    const d1 = await api.provisionDevice('press-1');
    await api.provisionDevice('press-2');
    const mes = await api.createMqttReader('mes', ['press-1']);
    expect(mes).toMatchObject({ username: 'reader:mes', devices: ['press-1'] });

    // The client id must be the username, so a reader cannot take over a device's session.
    await expect(connect('press-1', mes.username, mes.password)).rejects.toThrow();
    await expect(connect(mes.username, mes.username, 'wrong')).rejects.toThrow();
    const reader = await connect(mes.username, mes.username, mes.password);

    expect(await granted(reader, deviceTopic('press-1', 'results'))).toBe(1);
    expect(await granted(reader, deviceTopic('press-1', 'telemetry'))).toBe(1);
    for (const filter of [
      deviceTopic('press-2', 'results'),
      deviceTopic('press-1', 'desired'),
      deviceTopic('press-1', 'verdicts'),
      'linesight/v1/devices/+/results',
      'linesight/v1/devices/press-1/#',
      '#',
    ])
      expect(await granted(reader, filter), filter).toBe(128);

    // What the device publishes reaches the reader.
    const device = await connect('press-1', 'press-1', d1.password);
    const got = nextMessage(reader, deviceTopic('press-1', 'results'));
    await device.publishAsync(deviceTopic('press-1', 'results'), '{"probe":1}', { qos: 1 });
    expect(await got).toBe('{"probe":1}');

    // A publish by the reader is refused: the broker closes its connection.
    const closed = new Promise<void>((resolve) => reader.once('close', () => resolve()));
    reader.publish(deviceTopic('press-1', 'results'), 'forged', { qos: 1 });
    await closed;

    // A reader of every device may use + for the device.
    const all = await api.createMqttReader('scada', ['*']);
    const wide = await connect(all.username, all.username, all.password);
    expect(await granted(wide, 'linesight/v1/devices/+/telemetry')).toBe(1);
    expect(await granted(wide, 'linesight/v1/devices/+/desired')).toBe(128);

    expect((await api.listMqttReaders()).map((r) => [r.name, r.devices])).toEqual([
      ['mes', ['press-1']],
      ['scada', ['*']],
    ]);
    await expect(api.createMqttReader('mes', ['press-2'])).rejects.toSatisfy(
      (e) => e instanceof CloudApiError && e.status === 409,
    );
    await expect(api.createMqttReader('bad', ['no/slash'])).rejects.toSatisfy(
      (e) => e instanceof CloudApiError && e.status === 400,
    );

    // Revoking ends the live session at once, and the password no longer works.
    const ended = new Promise<void>((resolve) => wide.once('close', () => resolve()));
    await api.revokeMqttReader('scada');
    await ended;
    await expect(connect(all.username, all.username, all.password)).rejects.toThrow();
  });
});
