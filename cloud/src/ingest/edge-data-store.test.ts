import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventRecord, SampleRecord } from '@linesight/protocol';
import { EdgeDataStore } from './edge-data-store.ts';

let dir: string | undefined;
let store: EdgeDataStore | undefined;

afterEach(async () => {
  store?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('EdgeDataStore events', () => {
  it('cuts a long range at the newest events when asked newest first, at the oldest otherwise', async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
    store = new EdgeDataStore(join(dir, 'edge.sqlite'));
    const events: EventRecord[] = Array.from({ length: 10 }, (_, seq) => ({
      boot: 0,
      seq,
      at: new Date(Date.UTC(2026, 0, 1, 0, seq)).toISOString(),
      level: 'info',
      type: `e${seq}`,
      message: 'm',
    }));
    store.write([{ kind: 'events', deviceId: 'd1', records: events }]);
    const q = { deviceId: 'd1', limit: 3 };
    expect(store.events(q).map((e) => e.type)).toEqual(['e0', 'e1', 'e2']);
    expect(store.events({ ...q, newestFirst: true }).map((e) => e.type)).toEqual([
      'e9',
      'e8',
      'e7',
    ]);
  });
});

describe('EdgeDataStore samples', () => {
  it('filters by device, model version, class and time range, each on its own', async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
    store = new EdgeDataStore(join(dir, 'edge.sqlite'));
    const sample = (seq: number, cls: SampleRecord['class'], version: string): SampleRecord => ({
      boot: 0,
      seq,
      frameSeq: seq,
      at: new Date(Date.UTC(2026, 0, 1, 0, seq)).toISOString(),
      class: cls,
      modelName: 'm',
      modelVersion: version,
      score: 0.5,
      verdict: 'good',
      objectKey: `k${seq}`,
      bytes: 1,
      sha256: '0'.repeat(64),
    });
    store.write([
      {
        kind: 'samples',
        deviceId: 'd1',
        records: [sample(0, 'random', '1'), sample(1, 'defect', '2'), sample(2, 'defect', '1')],
      },
      { kind: 'samples', deviceId: 'd2', records: [sample(3, 'defect', '1')] },
    ]);
    const ids = (q: Parameters<EdgeDataStore['samples']>[0]) =>
      store!.samples(q).map((s) => `${s.deviceId}/${s.seq}`);
    expect(ids({})).toEqual(['d2/3', 'd1/2', 'd1/1', 'd1/0']);
    expect(ids({ deviceId: 'd1' })).toEqual(['d1/2', 'd1/1', 'd1/0']);
    expect(ids({ class: 'defect' })).toEqual(['d2/3', 'd1/2', 'd1/1']);
    expect(ids({ modelName: 'm', modelVersion: '1' })).toEqual(['d2/3', 'd1/2', 'd1/0']);
    expect(ids({ modelName: 'other' })).toEqual([]);
    const minute = (n: number) => Date.UTC(2026, 0, 1, 0, n);
    expect(ids({ fromMs: minute(1), toMs: minute(3) })).toEqual(['d1/2', 'd1/1']);
    expect(ids({ deviceId: 'd1', class: 'defect', modelVersion: '1' })).toEqual(['d1/2']);
  });
});
