// kill -9 of `linesight cloud` (embedded broker) while a device floods verdict batches at
// QoS 1, end to end: the device is a real MQTT client that keeps several publishes in flight
// and counts a record as delivered only when its PUBACK arrives (what the agent's store does
// before it deletes a row). After the cloud restarts on the same data dir, every record the
// device saw acknowledged is stored; the device then sends what was never acknowledged
// again, and every record is stored exactly once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { deviceTopic, encodeEdgeBatch, VerdictBatchSchema } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { startCloudProcess, type CloudProcess } from '../helpers/cloud-process.ts';

const ID = 'cloud-kill-1';
const ADMIN_TOKEN = 'cloud-kill-admin-token-0123456789';
/** Records per batch and batches in flight at once: the device floods. */
const BATCH_RECORDS = 20;
const IN_FLIGHT = 8;
/** Records acknowledged before the kill (the REST read returns at most 10,000). */
const ACKED_BEFORE_KILL = 2000;

const dirs: string[] = [];
const clouds: CloudProcess[] = [];
afterAll(async () => {
  for (const cloud of clouds) await cloud.process.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function batchOf(seqs: number[]): Buffer {
  return encodeEdgeBatch(
    VerdictBatchSchema,
    {
      schema: 'linesight.verdicts/v1',
      deviceId: ID,
      records: seqs.map((seq) => ({
        boot: 0,
        seq,
        frameSeq: seq,
        at: new Date(Date.UTC(2026, 0, 1) + seq).toISOString(),
        modelName: 'tile',
        modelVersion: '1.0.0',
        score: 0.1,
        verdict: 'good' as const,
        latencyMs: 3,
      })),
    },
    'verdicts',
  );
}

/** The stored verdict seqs of the device, read over REST. */
async function storedSeqs(cloud: CloudProcess): Promise<number[]> {
  const res = await fetch(`${cloud.httpUrl}/v1/edge/verdicts?deviceId=${ID}&limit=10000`, {
    headers: { authorization: `Bearer ${cloud.adminToken}` },
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { records: { seq: number }[] };
  return body.records.map((r) => r.seq);
}

async function connectDevice(cloud: CloudProcess, password: string): Promise<MqttClient> {
  const device = await mqtt.connectAsync(cloud.mqttUrl, {
    clientId: ID,
    username: ID,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  device.on('error', () => undefined);
  return device;
}

describe('kill -9 of the cloud while a device floods edge data', () => {
  it('loses no record the device saw acknowledged, and stores every record once after the resend', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-cloud-kill-'));
    dirs.push(dir);
    const first = await startCloudProcess({ dataDir: dir, adminToken: ADMIN_TOKEN });
    clouds.push(first);
    const creds = await first.api.provisionDevice(ID);
    const device = await connectDevice(first, creds.password);

    const acked = new Set<number>();
    const sent: number[][] = [];
    let gone = false;
    device.on('close', () => {
      gone = true;
    });
    let next = 0;
    const lane = async () => {
      while (!gone) {
        const seqs = Array.from({ length: BATCH_RECORDS }, (_, i) => next + i);
        next += BATCH_RECORDS;
        sent.push(seqs);
        try {
          await device.publishAsync(deviceTopic(ID, 'verdicts'), batchOf(seqs), { qos: 1 });
        } catch {
          return;
        }
        for (const seq of seqs) acked.add(seq);
      }
    };
    // Publishes in flight at the kill never settle (no reconnect): the lanes are not awaited.
    for (let i = 0; i < IN_FLIGHT; i++) void lane();
    await eventually(() => acked.size >= ACKED_BEFORE_KILL, {
      what: `${ACKED_BEFORE_KILL} records acknowledged`,
      timeoutMs: 60_000,
    });
    first.process.child.kill('SIGKILL');
    await first.process.exited;
    // A PUBACK read after the kill was still sent by the cloud before it died: it counts.
    await eventually(() => gone, { what: 'the device saw the cloud go' });
    const ackedAtKill = new Set(acked);
    await device.endAsync(true);

    const second = await startCloudProcess({ dataDir: dir, adminToken: ADMIN_TOKEN });
    clouds.push(second);
    const stored = new Set(await storedSeqs(second));
    const lost = [...ackedAtKill].filter((seq) => !stored.has(seq));
    expect(lost).toEqual([]);

    // The device sends again every batch it never saw acknowledged (a record the cloud had
    // stored before it died counts as a duplicate), then every record is stored once.
    const again = await connectDevice(second, creds.password);
    try {
      for (const seqs of sent)
        if (seqs.some((seq) => !ackedAtKill.has(seq)))
          await again.publishAsync(deviceTopic(ID, 'verdicts'), batchOf(seqs), { qos: 1 });
    } finally {
      await again.endAsync(true);
    }
    const all = await storedSeqs(second);
    expect(all.length).toBe(next);
    expect(new Set(all).size).toBe(next);
    await second.process.stop();
  });
});
