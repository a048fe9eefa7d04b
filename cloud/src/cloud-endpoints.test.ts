import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud } from './cloud.ts';

const ADVERTISED_HTTP = 'https://linesight.plant.example:8443';
const ADVERTISED_MQTT = 'mqtts://broker.plant.example:8883';

let dir: string;
let cloud: Cloud;
let api: CloudApiClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-endpoints-'));
  cloud = new Cloud(
    {
      httpPort: 0,
      mqttPort: 0,
      dataDir: dir,
      advertisedUrl: `${ADVERTISED_HTTP}/`,
      advertisedMqttUrl: ADVERTISED_MQTT,
    },
    pino({ level: 'silent' }),
  );
  await cloud.start();
  api = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: cloud.adminToken.token });
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

describe('advertised URLs', () => {
  it('hands devices the advertised MQTT URL and names both in /v1/connection', async () => {
    expect(cloud.advertised).toEqual({ http: ADVERTISED_HTTP, mqtt: ADVERTISED_MQTT });
    expect(cloud.urls.mqtt).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const provisioned = await api.provisionDevice('line-adv');
    expect(provisioned.mqttUrl).toBe(ADVERTISED_MQTT);
    expect(await api.connection()).toEqual({ cloudUrl: ADVERTISED_HTTP, mqttUrl: ADVERTISED_MQTT });
    // A device may ask too, with its own credentials.
    const basic = Buffer.from(`line-adv:${provisioned.password}`).toString('base64');
    const res = await fetch(`${cloud.urls.http}/v1/connection`, {
      headers: { authorization: `Basic ${basic}` },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { mqttUrl: string }).mqttUrl).toBe(ADVERTISED_MQTT);
  });

  it('refuses an advertised URL that is not a URL, naming the option', () => {
    expect(() => new Cloud({ advertisedMqttUrl: 'broker:1883', dataDir: dir })).toThrow(
      /advertisedMqttUrl/,
    );
  });
});

describe('/readyz', () => {
  it('answers 200 while broker, database and blob store can serve, without a token', async () => {
    const res = await fetch(`${cloud.urls.http}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ready',
      ready: true,
      checks: { broker: 'ok', database: 'ok', blobStore: 'ok' },
    });
  });

  it('answers 503 naming the blob store when it cannot take writes', async () => {
    // The store's folder replaced by a file: every write fails.
    await rm(join(dir, 'blobs'), { recursive: true, force: true });
    await writeFile(join(dir, 'blobs'), 'not a folder');
    try {
      const res = await fetch(`${cloud.urls.http}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { status: string; checks: Record<string, string> };
      expect(body.status).toBe('not ready');
      expect(body.checks.broker).toBe('ok');
      expect(body.checks.database).toBe('ok');
      expect(body.checks.blobStore).toMatch(/ENOTDIR|EEXIST|not a directory/i);
    } finally {
      await rm(join(dir, 'blobs'), { force: true });
    }
    expect((await fetch(`${cloud.urls.http}/readyz`)).status).toBe(200);
  });
});
