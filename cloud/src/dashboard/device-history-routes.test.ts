import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import {
  EventBatchSchema,
  WindowBatchSchema,
  deviceTopic,
  encodeEdgeBatch,
  type TelemetryWindow,
} from '@linesight/protocol';
import { Cloud } from '../cloud.ts';
import { NORMAL_LOOK, seededRandom, windowOf } from '../drift/drift-fixtures.ts';
import type { DeviceSeries } from './device-series.ts';
import type { DeviceTimeline } from './device-timeline.ts';
import { eventually } from '@linesight/testkit/eventually';

// A real cloud; the device's windows and events arrive over MQTT as an agent sends them.
let dir: string;
let cloud: Cloud;
let base: string;
let auth: { authorization: string };
let viewer: { authorization: string };
const MINUTE = 60_000;
// The newest window ends a minute ago: 30 windows of 200 frames, 1.0.0 then 1.1.0 from the 20th.
const T0 = Date.now() - 31 * MINUTE;

function windows(): TelemetryWindow[] {
  const next = seededRandom(11);
  return Array.from({ length: 30 }, (_, i) => {
    const w = windowOf({
      seq: i,
      startMs: T0 + i * MINUTE,
      durationMs: MINUTE,
      frameCount: 200,
      look: NORMAL_LOOK,
      next,
      model: { name: 'tile', version: i < 20 ? '1.0.0' : '1.1.0' },
    });
    // The camera freezes for the last five windows.
    if (i >= 25 && w.camera) w.camera = { ...w.camera, frozenFrames: 200 };
    return w;
  });
}

async function get<T>(path: string, headers = auth): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, { headers });
  return { status: res.status, body: (await res.json()) as T };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-device-history-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: dir },
    pino({ level: process.env.TEST_LOG ?? 'silent' }),
  );
  base = (await cloud.start()).http;
  auth = { authorization: `Bearer ${cloud.adminToken.token}` };
  const made = await fetch(`${base}/v1/tokens`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ actor: 'vera', role: 'viewer' }),
  });
  viewer = { authorization: `Bearer ${((await made.json()) as { token: string }).token}` };
  const api = new CloudApiClient({ baseUrl: base, adminToken: cloud.adminToken.token });
  const { password } = await api.provisionDevice('cell-9', { line: '2' });
  const device = await mqtt.connectAsync(cloud.urls.mqtt, {
    clientId: 'cell-9',
    username: 'cell-9',
    password,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  try {
    await device.publishAsync(
      deviceTopic('cell-9', 'windows'),
      encodeEdgeBatch(
        WindowBatchSchema,
        { schema: 'linesight.windows/v1', deviceId: 'cell-9', records: windows() },
        'windows',
      ),
      { qos: 1 },
    );
    await device.publishAsync(
      deviceTopic('cell-9', 'event-log'),
      encodeEdgeBatch(
        EventBatchSchema,
        {
          schema: 'linesight.event-log/v1',
          deviceId: 'cell-9',
          records: [
            {
              boot: 1,
              seq: 0,
              at: new Date(T0 + 20 * MINUTE).toISOString(),
              level: 'info',
              type: 'model.activated',
              message: 'tile 1.1.0 is live',
            },
          ],
        },
        'events',
      ),
      { qos: 1 },
    );
  } finally {
    await device.endAsync();
  }
  // The ingest commits in batches: wait until both are stored.
  await eventually(
    async () => {
      const s = await get<DeviceSeries>('/v1/dashboard/devices/cell-9/series?hours=1');
      const t = await get<DeviceTimeline>('/v1/dashboard/devices/cell-9/timeline?hours=1');
      return s.body.windows === 30 && t.body.entries.some((e) => e.kind === 'event');
    },
    { timeoutMs: 20_000, intervalMs: 100, what: 'the windows and events stored' },
  );
});

afterAll(async () => {
  await cloud?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('device history routes', () => {
  it('charts the stored windows: throughput, latency, defect rate, camera health, versions', async () => {
    const { status, body } = await get<DeviceSeries>(
      '/v1/dashboard/devices/cell-9/series?hours=1&points=60',
      viewer,
    );
    expect(status).toBe(200);
    // Thirty minutes of windows in at most 60 points: 30 s buckets, one window each.
    expect(body.bucketSec).toBe(30);
    expect(body.points).toHaveLength(30);
    const first = body.points[0];
    expect(first).toMatchObject({ windows: 1, frames: 200 });
    expect(first?.fps).toBeCloseTo(200 / 60, 3);
    expect(first?.p99Ms).toBeGreaterThan(0);
    expect(first?.defectRate).not.toBeNull();
    expect(body.points.map((p) => p.camera?.frozenShare)).toEqual([
      ...Array<number>(25).fill(0),
      ...Array<number>(5).fill(1),
    ]);
    expect(body.versions.map((v) => [v.version, v.windows])).toEqual([
      ['1.0.0', 20],
      ['1.1.0', 10],
    ]);
  });

  it('lists the timeline newest first: the version change, its event and the provisioning', async () => {
    const { body } = await get<DeviceTimeline>('/v1/dashboard/devices/cell-9/timeline', viewer);
    const kinds = body.entries.map((e) => `${e.kind}:${e.title}`);
    expect(kinds).toContain('model:tile 1.0.0 → tile 1.1.0');
    expect(kinds).toContain('event:model.activated');
    expect(kinds).toContain('audit:device.provision');
    expect(kinds.indexOf('model:tile 1.0.0 → tile 1.1.0')).toBeLessThan(
      kinds.indexOf('model:Running tile 1.0.0'),
    );
    // Provisioned just now, after the backdated windows: the newest entry.
    expect(kinds[0]).toBe('audit:device.provision');
  });

  it('answers 404 for an unknown device, 400 for a bad range, 401 without a token', async () => {
    expect((await get('/v1/dashboard/devices/nobody/series')).status).toBe(404);
    expect((await get('/v1/dashboard/devices/nobody/timeline')).status).toBe(404);
    expect((await get('/v1/dashboard/devices/cell-9/series?hours=0')).status).toBe(400);
    expect((await fetch(`${base}/v1/dashboard/devices/cell-9/timeline`)).status).toBe(401);
  });
});
