import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@linesight/testkit/eventually';
import {
  deviceTopic,
  encodeEdgeBatch,
  SampleBatchSchema,
  type SampleRecord,
} from '@linesight/protocol';
import { Cloud } from '../cloud.ts';

// The sweep as the cloud wires it: its blob store, the sample index the ingest fills from
// MQTT, the review labels and the device registry. Objects reach storage through the
// signed upload URLs devices get; rows through the device's own MQTT session.

let dir: string;
let cloud: Cloud;
let password: string;
const DEVICE = 'cam-a';
const HOUR_MS = 3_600_000;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-orphans-'));
  cloud = new Cloud(
    // Samples expire after about a minute and a half: a label must keep an expired one's image.
    {
      httpPort: 0,
      mqttPort: 0,
      dataDir: dir,
      edgeRetentionDays: {
        verdicts: 90,
        verdict_minutes: 365,
        windows: 365,
        events: 365,
        samples: 0.001,
      },
    },
    pino({ level: 'silent' }),
  );
  await cloud.start();
  const res = await fetch(`${cloud.urls.http}/v1/devices`, {
    method: 'POST',
    headers: admin({ 'content-type': 'application/json' }),
    body: JSON.stringify({ id: DEVICE }),
  });
  expect(res.status).toBe(201);
  password = ((await res.json()) as { password: string }).password;
});
afterAll(async () => {
  await cloud?.close();
  await rm(dir, { recursive: true, force: true });
});

function admin(headers: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${cloud.adminToken.token}`, ...headers };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const body = (seed: number) =>
  Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * seed) & 0xff));

/** Uploads objects as the device does: ask for URLs, PUT each; returns their keys by name. */
async function upload(objects: { name: string; bytes: Buffer }[]): Promise<Map<string, string>> {
  const res = await fetch(`${cloud.urls.http}/v1/devices/${DEVICE}/uploads`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${DEVICE}:${password}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      objects: objects.map((o) => ({
        name: o.name,
        contentType: o.name.endsWith('.png') ? 'image/png' : 'image/jpeg',
        bytes: o.bytes.length,
        sha256: sha256(o.bytes),
      })),
    }),
  });
  expect(res.status).toBe(200);
  const { uploads } = (await res.json()) as {
    uploads: { key: string; url: string; method: string; headers: Record<string, string> }[];
  };
  const keys = new Map<string, string>();
  for (const [i, u] of uploads.entries()) {
    const put = await fetch(u.url, {
      method: u.method,
      headers: u.headers,
      body: objects[i]!.bytes,
    });
    expect(put.status).toBe(200);
    keys.set(objects[i]!.name, u.key);
  }
  return keys;
}

function record(
  seq: number,
  at: Date,
  image: Buffer,
  objectKey: string,
  mapKey: string,
): SampleRecord {
  return {
    boot: 0,
    seq,
    frameSeq: seq,
    at: at.toISOString(),
    class: 'defect',
    modelName: 'tile',
    modelVersion: '1.0.0',
    score: 0.9,
    verdict: 'defect',
    objectKey,
    mapKey,
    bytes: image.length,
    sha256: sha256(image),
  };
}

describe('orphan sweep in the cloud', () => {
  it('deletes an upload no row names and leaves indexed and labelled samples alone', async () => {
    const images = [body(3), body(5), body(7), body(9), body(11)];
    const keys = await upload([
      { name: '0-1.jpg', bytes: images[0]! },
      { name: '0-1-map.png', bytes: images[1]! },
      { name: '0-2.jpg', bytes: images[2]! },
      { name: '0-2-map.png', bytes: images[3]! },
      // Uploaded, then evicted on the device: its row never comes.
      { name: '0-3.jpg', bytes: images[4]! },
    ]);
    const key = (name: string) => keys.get(name)!;
    // Sample 1 was captured now; sample 2 ten days ago, so retention deletes its row and
    // keeps its labelled image. Retention and the sweep run as of `capturedMs`, whatever time
    // the ingest takes on a loaded machine.
    const capturedMs = Date.now();
    const records = [
      record(1, new Date(capturedMs), images[0]!, key('0-1.jpg'), key('0-1-map.png')),
      record(
        2,
        new Date(capturedMs - 240 * HOUR_MS),
        images[2]!,
        key('0-2.jpg'),
        key('0-2-map.png'),
      ),
    ];
    const device = await mqtt.connectAsync(cloud.urls.mqtt, {
      clientId: DEVICE,
      username: DEVICE,
      password,
      reconnectPeriod: 0,
    });
    try {
      await device.publishAsync(
        deviceTopic(DEVICE, 'samples'),
        encodeEdgeBatch(
          SampleBatchSchema,
          { schema: 'linesight.samples/v1', deviceId: DEVICE, records },
          'samples',
        ),
        { qos: 1 },
      );
    } finally {
      await device.endAsync();
    }
    await eventually(
      async () =>
        (await fetch(`${cloud.urls.http}/v1/samples/${DEVICE}/0-2`, { headers: admin() }))
          .status === 200,
      { what: 'both samples indexed', timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(
      (await fetch(`${cloud.urls.http}/v1/samples/${DEVICE}/0-1`, { headers: admin() })).status,
    ).toBe(200);
    const label = await fetch(`${cloud.urls.http}/v1/review/samples/${DEVICE}/0-2/labels`, {
      method: 'POST',
      headers: admin({ 'content-type': 'application/json' }),
      body: JSON.stringify({ label: 'defect' }),
    });
    expect(label.status).toBe(201);

    const retention = cloud.edgeRetention!;
    expect(await retention.deleteExpiredBlobs(capturedMs)).toBe(0);
    expect(retention.enforce(capturedMs).samples).toBe(1);
    // Two days on, the orphan is past the 24-hour grace (and, with this short retention, past
    // the time its row could still come); nothing else goes.
    expect(await retention.sweepOrphans(capturedMs + 48 * HOUR_MS)).toEqual({
      listed: 5,
      deleted: 1,
      waiting: 0,
    });
    const left = [];
    for await (const e of cloud.blobs.list('samples/')) left.push(e.key);
    expect(new Set(left)).toEqual(
      new Set([key('0-1.jpg'), key('0-1-map.png'), key('0-2.jpg'), key('0-2-map.png')]),
    );
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(metrics).toContain('linesight_retention_objects_deleted_total{reason="orphan"} 1');
    expect(metrics).toContain('linesight_retention_objects_deleted_total{reason="expired"} 0');
  });
});
