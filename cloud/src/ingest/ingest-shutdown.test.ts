import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { deviceTopic, encodeEdgeBatch, VerdictBatchSchema } from '@linesight/protocol';
import { Cloud } from '../cloud.ts';
import { EdgeDataStore } from './edge-data-store.ts';
import { eventually } from '@linesight/testkit/eventually';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function batchOf(deviceId: string, seq: number): Buffer {
  return encodeEdgeBatch(
    VerdictBatchSchema,
    {
      schema: 'linesight.verdicts/v1',
      deviceId,
      records: [
        {
          boot: 0,
          seq,
          frameSeq: seq,
          at: new Date(Date.UTC(2026, 0, 1) + seq).toISOString(),
          modelName: 'tile',
          modelVersion: '1.0.0',
          score: 0.1,
          verdict: 'good',
          latencyMs: 3,
        },
      ],
    },
    'verdicts',
  );
}

describe('cloud shutdown', () => {
  it('stores every batch the broker acknowledged to a device that kept publishing through close()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-ingest-shutdown-'));
    dirs.push(dir);
    const cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
    await cloud.start();
    const api = new CloudApiClient({
      baseUrl: cloud.urls.http,
      adminToken: cloud.adminToken.token,
    });
    const creds = await api.provisionDevice('closing-1');
    const device = await mqtt.connectAsync(cloud.urls.mqtt, {
      clientId: 'closing-1',
      username: creds.username,
      password: creds.password,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    device.on('error', () => undefined);
    const acknowledged: number[] = [];
    let seq = 0;
    let stopped = false;
    device.once('close', () => {
      stopped = true;
    });
    // 16 batches in flight at a time, each resolving on the broker's PUBACK, until the
    // connection goes.
    const publisher = async () => {
      while (!stopped) {
        const mine = seq++;
        try {
          await device.publishAsync(
            deviceTopic('closing-1', 'verdicts'),
            batchOf('closing-1', mine),
            {
              qos: 1,
            },
          );
          acknowledged.push(mine);
        } catch {
          return;
        }
      }
    };
    const publishers = Array.from({ length: 16 }, publisher);
    // Close while the stream runs.
    await eventually(() => acknowledged.length >= 200, { what: '200 acknowledged', intervalMs: 1 });
    await cloud.close();
    await device.endAsync(true);
    await Promise.all(publishers);

    const store = new EdgeDataStore(join(dir, 'edge-data.sqlite'));
    try {
      const stored = new Set(
        store.verdicts({ deviceId: 'closing-1', limit: 1_000_000 }).map((r) => r.seq),
      );
      const lost = acknowledged.filter((s) => !stored.has(s));
      expect(acknowledged.length).toBeGreaterThanOrEqual(200);
      expect(lost, `${lost.length} of ${acknowledged.length} acknowledged batches lost`).toEqual(
        [],
      );
    } finally {
      store.close();
    }
  });
});
