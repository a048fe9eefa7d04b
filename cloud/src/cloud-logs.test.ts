import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { CHANNEL_SCHEMAS, deviceTopic, encodePayload, isLinesightError } from '@linesight/protocol';
import { Cloud } from './cloud.ts';
import { meanScoreOnnx } from '@linesight/testkit/onnx';
import { runCloud } from './main.ts';
import { eventually } from '@linesight/testkit/eventually';

/** Every line the cloud logs, raw, as a log shipper would read it. */
const lines: string[] = [];
let dir: string;
let cloud: Cloud;
let api: CloudApiClient;

function parsed(): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-logs-'));
  const logger = pino({ level: 'info', base: { app: 'cloud' } }, { write: (l) => lines.push(l) });
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, logger);
  await cloud.start();
  api = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: cloud.adminToken.token });
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

describe('cloud logs', () => {
  it('logs an info line when a device is provisioned and a model published', async () => {
    await api.provisionDevice('log-1', { line: 'a' });
    await api.publishModel({
      name: 'logged',
      version: '1.0.0',
      onnx: meanScoreOnnx({ side: 8, threshold: 0.5 }),
    });
    const audit = parsed().filter((l) => l.component === 'audit');
    expect(audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          level: 30,
          action: 'device.provision',
          subject: 'log-1',
          actor: 'admin',
        }),
        expect.objectContaining({
          level: 30,
          action: 'model.register',
          subject: 'logged@1.0.0',
        }),
      ]),
    );
  });

  it('writes one access line per request, with status, time and actor', async () => {
    await api.listDevices();
    await fetch(`${cloud.urls.http}/v1/devices`); // no token: 401
    const access = parsed().filter((l) => l.component === 'access' && l.url === '/v1/devices');
    expect(access).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 30, method: 'POST', statusCode: 201, actor: 'admin' }),
        expect.objectContaining({ method: 'GET', statusCode: 200, actor: 'admin' }),
        expect.objectContaining({ method: 'GET', statusCode: 401, actor: 'anonymous' }),
      ]),
    );
    expect(access.every((l) => typeof l.responseTimeMs === 'number')).toBe(true);
  });

  it('logs device events with one "level" key, at the event level', async () => {
    const { password } = await api.provisionDevice('log-2');
    const client = await mqtt.connectAsync(cloud.urls.mqtt, {
      clientId: 'log-2',
      username: 'log-2',
      password,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    try {
      const event = {
        schema: 'linesight.event/v1' as const,
        deviceId: 'log-2',
        at: new Date().toISOString(),
        level: 'warn' as const,
        type: 'camera.error',
        message: 'camera unplugged',
        code: 'ERR_CAMERA',
      };
      await client.publishAsync(
        deviceTopic('log-2', 'events'),
        encodePayload(CHANNEL_SCHEMAS.events, event, 'event'),
        { qos: 1 },
      );
      await eventually(() => lines.some((l) => l.includes('camera unplugged')), {
        what: 'the event line',
        intervalMs: 20,
      });
    } finally {
      await client.endAsync(true);
    }
    const line = lines.find((l) => l.includes('camera unplugged')) as string;
    expect(line.match(/"level":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({
      level: 40,
      deviceId: 'log-2',
      eventType: 'camera.error',
      code: 'ERR_CAMERA',
    });
    // No line anywhere carries a second level key.
    expect(lines.filter((l) => (l.match(/"level":/g) ?? []).length !== 1)).toEqual([]);
  });
});

describe('log level checks', () => {
  it('runCloud names the valid levels for an unknown one', async () => {
    const err = await runCloud({ config: { logLevel: 'verbose' as 'info', dataDir: dir }, env: {} })
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(isLinesightError(err, 'ERR_CLOUD_CONFIG')).toBe(true);
    expect((err as Error).message).toContain('"verbose"');
    expect((err as Error).message).toContain('fatal, error, warn, info, debug, trace, silent');
  });

  it('the cloud config names the valid levels too', () => {
    expect(() => new Cloud({ logLevel: 'verbose' as 'info' })).toThrow(
      /logLevel: must be one of fatal, error, warn, info, debug, trace, silent/,
    );
  });
});
