// Bad edge data over MQTT, end to end: `linesight cloud` as its own process and
// a device that speaks MQTT with its real credentials but sends what a buggy or
// hostile firmware might: resends, partial replays, a batch naming another
// device, truncated gzip, plain JSON, a wrong schema, a gzip bomb, and a publish
// on another device's topic. Each is counted and dropped, nothing is stored
// twice, the cloud says why in its log, and good data after it still lands.
import { gzipSync } from 'node:zlib';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import {
  deviceTopic,
  encodeEdgeBatch,
  VerdictBatchSchema,
  type VerdictBatch,
  type VerdictRecord,
} from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';

const ADMIN_TOKEN = 'edge-bad-input-admin-token-0123456789';

let dir: string;
let cloud: LinesightProcess;
let httpUrl: string;
let mqttUrl: string;
let api: CloudApiClient;
const clients: MqttClient[] = [];

interface IngestStats {
  ingest: {
    batches: Record<string, number>;
    records: number;
    stored: number;
    duplicates: number;
    invalid: number;
    foreignDevice: number;
    unknownDevice: number;
  };
}

function batch(deviceId: string, seqs: number[]): VerdictBatch {
  return {
    schema: 'linesight.verdicts/v1',
    deviceId,
    records: seqs.map((seq): VerdictRecord => ({
      boot: 0,
      seq,
      frameSeq: seq,
      at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
      modelName: 'tile',
      modelVersion: '1.0.0',
      score: 0.1,
      verdict: 'good',
      latencyMs: 4,
    })),
  };
}

async function get<T>(path: string): Promise<T> {
  const res = await fetch(`${httpUrl}${path}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function connectAs(id: string): Promise<MqttClient> {
  const creds = await api.provisionDevice(id);
  const client = await mqtt.connectAsync(mqttUrl, {
    clientId: id,
    username: creds.username,
    password: creds.password,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-e2e-bad-input-'));
  cloud = new LinesightProcess(
    ['cloud', '--http-port', '0', '--mqtt-port', '0', '--data-dir', join(dir, 'cloud')],
    { LINESIGHT_ADMIN_TOKEN: ADMIN_TOKEN },
  );
  const ready = await cloud.waitForLog((l) => typeof l.httpUrl === 'string', 60_000);
  httpUrl = ready.httpUrl as string;
  mqttUrl = ready.mqttUrl as string;
  api = new CloudApiClient({ baseUrl: httpUrl, adminToken: ADMIN_TOKEN });
});

afterAll(async () => {
  for (const c of clients) await c.endAsync(true);
  await cloud?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('edge data from a misbehaving device', () => {
  it('counts and drops every kind of bad batch, stores nothing twice, and keeps taking good data', async () => {
    const id = 'bad-line-1';
    const device = await connectAs(id);
    const topic = deviceTopic(id, 'verdicts');
    const send = (payload: Buffer) => device.publishAsync(topic, payload, { qos: 1 });
    const good = (seqs: number[]) => encodeEdgeBatch(VerdictBatchSchema, batch(id, seqs), 'v');

    await send(good([0, 1, 2, 3]));
    // A resend after a lost PUBACK, and a replay of part of it with one new record.
    await send(good([0, 1, 2, 3]));
    await send(good([3, 4]));
    // Its own topic, another device's records.
    await send(encodeEdgeBatch(VerdictBatchSchema, batch('someone-else', [9]), 'v'));
    // Truncated gzip, plain JSON, a wrong schema, and 32 MiB of zeros in 32 KiB of gzip.
    await send(good([7]).subarray(0, 12));
    await send(Buffer.from(JSON.stringify(batch(id, [8]))));
    await send(gzipSync(JSON.stringify({ ...batch(id, [8]), extra: true })));
    await send(gzipSync(Buffer.alloc(32 * 1024 * 1024)));

    // Another device's topic: the broker refuses it, whatever the payload says.
    const other = await connectAs('bad-line-2');
    const intruder = await connectAs('bad-line-3');
    intruder.on('error', () => undefined);
    const refused = new Promise<void>((resolve) => intruder.once('close', () => resolve()));
    intruder.publish(deviceTopic('bad-line-2', 'verdicts'), good([100]), { qos: 1 });
    // MQTT 3.1.1 has no negative PUBACK: the broker closes the connection of a client that
    // publishes where it may not.
    await refused;

    // The device is not blocked by what it sent before: good data still lands.
    await send(good([5]));
    await other.publishAsync(
      deviceTopic('bad-line-2', 'verdicts'),
      encodeEdgeBatch(VerdictBatchSchema, batch('bad-line-2', [0]), 'v'),
      { qos: 1 },
    );

    const stats = await eventually(
      async () => {
        const s = await get<IngestStats>('/v1/edge/ingest-stats');
        return (s.ingest.batches.verdicts ?? 0) >= 10 && s.ingest.stored >= 7 ? s : undefined;
      },
      { what: 'ten verdict batches ingested', timeoutMs: 60_000 },
    );
    expect(stats.ingest).toMatchObject({
      stored: 7,
      duplicates: 5,
      invalid: 4,
      foreignDevice: 1,
      unknownDevice: 0,
    });
    expect(stats.ingest.batches.verdicts).toBe(10);

    const rows = await get<{ records: VerdictRecord[] }>(
      `/v1/edge/verdicts?deviceId=${id}&limit=100`,
    );
    expect(rows.records.map((r) => r.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    const second = await get<{ records: VerdictRecord[] }>(
      `/v1/edge/verdicts?deviceId=bad-line-2&limit=100`,
    );
    // Only bad-line-2's own batch: bad-line-3's publish on its topic never reached the ingest.
    expect(second.records.map((r) => r.seq)).toEqual([0]);

    // The cloud said why, naming the device, once per dropped batch.
    const invalid = cloud.lines.filter((l) => l.msg === 'dropped an invalid batch');
    expect(invalid).toHaveLength(4);
    expect(invalid.every((l) => l.deviceId === id && typeof l.err === 'string')).toBe(true);
    expect(
      cloud.lines.filter(
        (l) => l.msg === 'dropped a batch naming another device' && l.deviceId === id,
      ),
    ).toHaveLength(1);

    // The same counters in /metrics.
    const metrics = await (await fetch(`${httpUrl}/metrics`)).text();
    expect(metrics).toContain('linesight_ingest_batches_dropped_total{reason="invalid"} 4');
    expect(metrics).toContain('linesight_ingest_records_total{outcome="duplicate"} 5');
  });
});
