import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeEdgeBatch,
  deviceTopic,
  encodeEdgeBatch,
  VerdictBatchSchema,
  type VerdictBatch,
} from '@linesight/protocol';
import { EdgeDataStore } from './edge-data-store.ts';
import { EdgeIngest } from './edge-ingest.ts';
import { EdgeRetention } from './edge-retention.ts';
import { ingestMetrics } from './ingest-metrics.ts';
import { renderPrometheus } from '../metrics.ts';
import mqtt from 'mqtt';
import { EmbeddedBroker } from '../broker/embedded-broker.ts';
import { eventually } from '@linesight/testkit/eventually';

const logger = pino({ level: 'silent' });
let dir: string | undefined;
let store: EdgeDataStore | undefined;

afterEach(async () => {
  store?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function batch(deviceId: string, seqs: number[], at = '2026-01-01T00:00:30.000Z'): VerdictBatch {
  return {
    schema: 'linesight.verdicts/v1',
    deviceId,
    records: seqs.map((seq) => ({
      boot: 0,
      seq,
      frameSeq: seq,
      at,
      modelName: 'tile',
      modelVersion: '1.0.0',
      score: seq % 2 === 0 ? 0.9 : 0.1,
      verdict: seq % 2 === 0 ? 'defect' : 'good',
      latencyMs: 3,
    })),
  };
}

describe('EdgeIngest', () => {
  it('stores each record once and drops bad, foreign, unknown and replayed input, counting each', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ingest-'));
    store = new EdgeDataStore(join(dir, 'edge.sqlite'));
    const ingest = new EdgeIngest({
      mqttUrl: 'mqtt://127.0.0.1:1',
      username: 'x',
      password: 'x',
      store,
      knownDevice: (id) => id !== 'ghost',
      logger,
    });
    const topic = deviceTopic('d1', 'verdicts');
    ingest.handle(topic, encodeEdgeBatch(VerdictBatchSchema, batch('d1', [0, 1, 2, 3]), 'v'));
    // A resend after a lost PUBACK, and a replay of part of it with one new record.
    ingest.handle(topic, encodeEdgeBatch(VerdictBatchSchema, batch('d1', [0, 1, 2, 3]), 'v'));
    ingest.handle(topic, encodeEdgeBatch(VerdictBatchSchema, batch('d1', [3, 4]), 'v'));
    // d2's payload on d1's topic, a wrong schema, not gzip, and an unprovisioned device.
    ingest.handle(topic, encodeEdgeBatch(VerdictBatchSchema, batch('d2', [9]), 'v'));
    ingest.handle(
      topic,
      encodeEdgeBatch(VerdictBatchSchema, { ...batch('d1', [7]) }, 'v').subarray(0, 10),
    );
    ingest.handle(topic, Buffer.from(JSON.stringify(batch('d1', [8]))));
    ingest.handle(
      deviceTopic('ghost', 'verdicts'),
      encodeEdgeBatch(VerdictBatchSchema, batch('ghost', [0]), 'v'),
    );
    ingest.flush();
    expect(ingest.stats).toMatchObject({
      stored: 5,
      duplicates: 5,
      invalid: 2,
      foreignDevice: 1,
      unknownDevice: 1,
    });
    expect(store.counts().verdicts).toBe(5);
    expect(store.verdicts({ deviceId: 'd1' }).map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    // The same counters, as /metrics shows them.
    const text = renderPrometheus(ingestMetrics(ingest.stats, ingest.pendingRecords));
    expect(text).toContain('linesight_ingest_records_total{outcome="stored"} 5\n');
    expect(text).toContain('linesight_ingest_records_total{outcome="duplicate"} 5\n');
    expect(text).toContain('linesight_ingest_batches_dropped_total{reason="invalid"} 2\n');
    expect(text).toContain('linesight_ingest_batches_dropped_total{reason="unknown_device"} 1\n');
    expect(text).toContain('linesight_ingest_batches_total{channel="verdicts"} 7\n');
    expect(text).toContain('linesight_ingest_pending_records 0\n');
    await ingest.close();
  });

  it('counts verdicts per bucket over rows and compacted minutes, and enforces retention', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ingest-'));
    store = new EdgeDataStore(join(dir, 'edge.sqlite'));
    store.write([
      { kind: 'verdicts', deviceId: 'd1', records: batch('d1', [0, 1, 2]).records },
      {
        kind: 'minutes',
        deviceId: 'd1',
        records: [
          {
            boot: 0,
            seq: 100,
            minute: '2026-01-01T00:01:00.000Z',
            modelName: 'tile',
            modelVersion: '1.0.0',
            good: 50,
            defect: 5,
            unknown: 1,
          },
        ],
      },
    ]);
    expect(store.verdictCounts({ deviceId: 'd1', bucketSec: 3600 })).toEqual([
      {
        deviceId: 'd1',
        modelName: 'tile',
        modelVersion: '1.0.0',
        bucketStart: '2026-01-01T00:00:00.000Z',
        good: 51,
        defect: 7,
        unknown: 1,
      },
    ]);
    expect(store.verdictCounts({ modelVersion: '2.0.0', bucketSec: 3600 })).toEqual([]);
    const retention = new EdgeRetention({
      store,
      logger,
      days: { verdicts: 1, verdict_minutes: 1000, windows: 1, events: 1, samples: 1 },
    });
    const deleted = retention.enforce(Date.parse('2026-01-03T00:00:00.000Z'));
    expect(deleted.verdicts).toBe(3);
    expect(deleted.verdict_minutes).toBe(0);
    expect(store.counts()).toMatchObject({ verdicts: 0, verdict_minutes: 1 });
    await retention.close();
  });

  it('with a durable session, acknowledges a batch to the broker only once it is stored: one received and not committed comes again', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ingest-'));
    store = new EdgeDataStore(join(dir, 'edge.sqlite'));
    const broker = new EmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      logger,
      authenticate: (_clientId, username) =>
        username === 'svc' ? { kind: 'service' } : { kind: 'device', deviceId: username },
    });
    const url = `mqtt://127.0.0.1:${await broker.start()}`;
    const started: EdgeIngest[] = [];
    const device = await mqtt.connectAsync(url, {
      clientId: 'd1',
      username: 'd1',
      reconnectPeriod: 0,
    });
    try {
      const ingestOn = async () => {
        const ingest = new EdgeIngest({
          mqttUrl: url,
          username: 'svc',
          password: 'x',
          store: store!,
          knownDevice: () => true,
          logger,
          durableClientId: 'linesight-ingest',
          // Nothing commits on its own: the test says when.
          flushIntervalMs: 3_600_000,
        });
        started.push(ingest);
        await ingest.start();
        return ingest;
      };
      const send = (seqs: number[]) =>
        device.publishAsync(
          deviceTopic('d1', 'verdicts'),
          encodeEdgeBatch(VerdictBatchSchema, batch('d1', seqs), 'v'),
          { qos: 1 },
        );
      const received = (ingest: EdgeIngest, records: number) =>
        eventually(() => ingest.stats.records >= records, {
          what: `${records} records received`,
          intervalMs: 10,
        });

      /** Takes the ingest's session over (as a second cloud would) and resolves with the first batch's seqs it is given. */
      const takeOver = async () => {
        const thief = await mqtt.connectAsync(url, {
          clientId: 'linesight-ingest',
          username: 'svc',
          clean: false,
          reconnectPeriod: 0,
        });
        const seqs = await new Promise<number[]>((resolve) =>
          thief.once('message', (_topic, payload) =>
            resolve(
              (decodeEdgeBatch(VerdictBatchSchema, payload, 'v') as VerdictBatch).records.map(
                (r) => r.seq,
              ),
            ),
          ),
        );
        return { seqs, end: () => thief.endAsync(true) };
      };

      const first = await ingestOn();
      await send([0, 1, 2]);
      await received(first, 3);
      // Received, not committed: the broker still holds it and gives it to the next holder of the session.
      const thief = takeOver();
      expect((await thief).seqs).toEqual([0, 1, 2]);
      await (await thief).end();
      await first.close();

      const second = await ingestOn();
      await send([3, 4]);
      await received(second, 2);
      second.flush();
      // Committed, so acknowledged: the next holder of the session gets only what came after.
      const again = takeOver();
      await send([5]);
      expect((await again).seqs).toEqual([5]);
      await (await again).end();
      await second.close();
      // Sent while no one holds the session: the broker queues it.
      await send([6]);
      const third = await ingestOn();
      await received(third, 1);
      third.flush();
      // Every record stored once, whichever session held it when.
      expect(store.counts()).toMatchObject({ verdicts: 7 });
    } finally {
      await device.endAsync(true);
      for (const ingest of started) await ingest.close();
      await broker.close();
    }
  });
  it('from the embedded broker in process, the device gets its PUBACK only after the commit that stored its batch', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ingest-'));
    store = new EdgeDataStore(join(dir, 'edge.sqlite'));
    const broker = new EmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      logger,
      authenticate: (_clientId, username) => ({ kind: 'device', deviceId: username }),
    });
    const url = `mqtt://127.0.0.1:${await broker.start()}`;
    const ingest = new EdgeIngest({
      mqttUrl: 'mqtt://unused',
      username: 'unused',
      password: 'unused',
      inProcess: broker,
      store,
      knownDevice: (id) => id !== 'ghost',
      logger,
      // Nothing commits on its own: the test says when.
      flushIntervalMs: 3_600_000,
    });
    await ingest.start();
    const device = await mqtt.connectAsync(url, {
      clientId: 'd1',
      username: 'd1',
      reconnectPeriod: 0,
    });
    const other = await mqtt.connectAsync(url, {
      clientId: 'd2',
      username: 'd2',
      reconnectPeriod: 0,
    });
    try {
      let acked = false;
      const publish = device
        .publishAsync(
          deviceTopic('d1', 'verdicts'),
          encodeEdgeBatch(VerdictBatchSchema, batch('d1', [0, 1, 2]), 'v'),
          { qos: 1 },
        )
        .then(() => {
          acked = true;
        });
      await eventually(() => ingest.pendingRecords === 3, {
        what: 'batch received',
        intervalMs: 5,
      });
      // A full round trip through the broker on another connection after the ingest holds the
      // batch: a PUBACK sent on receipt (the old path) would have reached the device by now.
      await other.publishAsync(deviceTopic('d2', 'status'), 'online', { qos: 1 });
      expect(acked).toBe(false);
      expect(store.counts()).toMatchObject({ verdicts: 0 });
      ingest.flush();
      await publish;
      expect(store.counts()).toMatchObject({ verdicts: 3 });

      // Dropped batches (an unprovisioned device's, a duplicate) are acknowledged too, after
      // the next commit: they will never be stored, so holding them would only block the device.
      const ghost = await mqtt.connectAsync(url, {
        clientId: 'ghost',
        username: 'ghost',
        reconnectPeriod: 0,
      });
      try {
        const dropped = Promise.all([
          ghost.publishAsync(
            deviceTopic('ghost', 'verdicts'),
            encodeEdgeBatch(VerdictBatchSchema, batch('ghost', [0]), 'v'),
            { qos: 1 },
          ),
          device.publishAsync(
            deviceTopic('d1', 'verdicts'),
            encodeEdgeBatch(VerdictBatchSchema, batch('d1', [0, 1, 2]), 'v'),
            { qos: 1 },
          ),
        ]);
        await eventually(() => ingest.stats.unknownDevice === 1 && ingest.pendingRecords === 3, {
          what: 'both received',
          intervalMs: 5,
        });
        ingest.flush();
        await dropped;
        expect(ingest.stats).toMatchObject({ stored: 3, duplicates: 3, unknownDevice: 1 });
      } finally {
        await ghost.endAsync(true);
      }

      // close() commits what it holds and only then acknowledges it.
      const held = Array.from({ length: 5 }, (_, i) =>
        device.publishAsync(
          deviceTopic('d1', 'verdicts'),
          encodeEdgeBatch(VerdictBatchSchema, batch('d1', [100 + i]), 'v'),
          { qos: 1 },
        ),
      );
      await eventually(() => ingest.pendingRecords === 5, {
        what: 'five batches held',
        intervalMs: 5,
      });
      await ingest.close();
      await Promise.all(held);
      expect(store.counts()).toMatchObject({ verdicts: 8 });
      // After close() nothing is acknowledged unstored: the broker refuses the publish and
      // closes the connection (the device sends it again once it reconnects).
      const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
      void device
        .publishAsync(
          deviceTopic('d1', 'verdicts'),
          encodeEdgeBatch(VerdictBatchSchema, batch('d1', [200]), 'v'),
          { qos: 1 },
        )
        .catch(() => undefined);
      await closed;
      expect(store.counts()).toMatchObject({ verdicts: 8 });
    } finally {
      await device.endAsync(true);
      await other.endAsync(true);
      await ingest.close();
      await broker.close();
    }
  });
});
