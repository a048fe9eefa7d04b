import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeEdgeBatch,
  EDGE_CHANNEL_SCHEMAS,
  type EdgeChannel,
  type VerdictBatch,
} from '@linesight/protocol';
import { EdgeStore } from '../store/edge-store.ts';
import { Forwarder } from './forwarder.ts';
import { eventually } from '@linesight/testkit/eventually';

const logger = pino({ level: 'silent' });
let dir: string | undefined;
let store: EdgeStore | undefined;

afterEach(async () => {
  store?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('Forwarder', () => {
  it('deletes only acknowledged batches, resends the rest after a drop, windows first', async () => {
    dir = await mkdtemp(join(tmpdir(), 'forwarder-'));
    store = await EdgeStore.open({ dir, quotaBytes: 1e9, logger });
    for (let i = 0; i < 1200; i++)
      store.recordVerdict({
        frameSeq: i,
        at: new Date().toISOString(),
        modelName: 'tile',
        modelVersion: '1.0.0',
        score: 0.1,
        verdict: 'good',
        latencyMs: 5,
      });
    store.flush();
    const { TelemetryWindowAggregator } = await import('../store/telemetry-window.ts');
    store.addWindow(new TelemetryWindowAggregator().close({ droppedFrames: 0, errors: 0 }));
    const received: { channel: EdgeChannel; seqs: number[] }[] = [];
    let failNext = 2;
    let connected = true;
    const forwarder = new Forwarder({
      deviceId: 'd1',
      store,
      logger,
      connected: () => connected,
      batchRecords: 300,
      maxInFlight: 2,
      publish: async (channel, payload) => {
        const batch = decodeEdgeBatch(EDGE_CHANNEL_SCHEMAS[channel], payload, channel);
        if (failNext > 0) {
          failNext--;
          throw new Error('connection lost');
        }
        received.push({ channel, seqs: batch.records.map((r) => r.seq) });
      },
    });
    forwarder.tick();
    await eventually(() => forwarder.stats.failures === 2, { intervalMs: 10 });
    connected = false;
    forwarder.onDisconnect();
    connected = true;
    forwarder.tick();
    await eventually(() => store?.backlog().verdicts === 0 && store.backlog().windows === 0, {
      intervalMs: 10,
    });
    await forwarder.close();
    expect(received[0]?.channel).toBe('windows');
    const verdictSeqs = received.filter((r) => r.channel === 'verdicts').flatMap((r) => r.seqs);
    // Every row arrived; a resent row may arrive twice (the cloud keeps it once), none is missing.
    expect(new Set(verdictSeqs).size).toBe(1200);
    expect(forwarder.stats.recordsAcked.verdicts).toBeGreaterThanOrEqual(1200);
  });

  it('sends at most recordsPerSec', async () => {
    dir = await mkdtemp(join(tmpdir(), 'forwarder-'));
    store = await EdgeStore.open({ dir, quotaBytes: 1e9, logger });
    for (let i = 0; i < 1000; i++)
      store.recordVerdict({
        frameSeq: i,
        at: new Date().toISOString(),
        modelName: null,
        modelVersion: null,
        score: null,
        verdict: 'unknown',
        reason: 'no model loaded',
        latencyMs: 1,
      });
    store.flush();
    let records = 0;
    const forwarder = new Forwarder({
      deviceId: 'd1',
      store,
      logger,
      connected: () => true,
      recordsPerSec: 200,
      publish: async (channel, payload) => {
        records += (
          decodeEdgeBatch(EDGE_CHANNEL_SCHEMAS[channel], payload, channel) as VerdictBatch
        ).records.length;
      },
    });
    forwarder.tick();
    await forwarder.close();
    // The bucket starts full: one second's worth, not the whole backlog.
    expect(records).toBe(200);
    expect(store.backlog().verdicts).toBe(800);
  });
});

describe('Forwarder sample uploads', () => {
  it('waits longer after each upload round that stored nothing, and goes back to every tick after one that stored', async () => {
    dir = await mkdtemp(join(tmpdir(), 'forwarder-'));
    store = await EdgeStore.open({ dir, quotaBytes: 1e9, logger });
    const image = Buffer.alloc(256, 3);
    for (let i = 0; i < 3; i++)
      await store.addSample(
        {
          frameSeq: i,
          at: new Date().toISOString(),
          class: 'defect',
          modelName: 'tile',
          modelVersion: '1.0.0',
          score: 0.9,
          verdict: 'defect',
        },
        image,
      );
    let now = 0;
    let cloudUp = false;
    const rounds: number[] = [];
    const forwarder = new Forwarder({
      deviceId: 'd1',
      store,
      logger,
      connected: () => true,
      publish: async () => {},
      nowMs: () => now,
      uploadBackoff: { initialMs: 1000, maxMs: 4000, jitter: 0 },
      uploader: {
        upload: async (samples) => {
          rounds.push(now);
          return samples.map((s) => (cloudUp ? { objectKey: `k/${s.seq}` } : undefined));
        },
      },
    });
    const tickAt = async (ms: number) => {
      now = ms;
      forwarder.tick();
      // Let the round (a resolved promise) settle before the next tick.
      await new Promise((r) => setImmediate(r));
    };
    // The cloud refuses: rounds at 0, then 1 s, 2 s, 4 s, 4 s apart (capped); ticks between do nothing.
    for (let ms = 0; ms <= 11_000; ms += 100) await tickAt(ms);
    expect(rounds).toEqual([0, 1000, 3000, 7000, 11_000]);
    expect(forwarder.stats.uploadBackoffs).toBe(5);
    // Back: the next due round stores everything, and the wait is over.
    cloudUp = true;
    for (let ms = 11_100; ms <= 15_000; ms += 100) await tickAt(ms);
    expect(rounds.at(-1)).toBe(15_000);
    expect(store.pendingUploads(10)).toEqual([]);
    await forwarder.close();
  });
});
