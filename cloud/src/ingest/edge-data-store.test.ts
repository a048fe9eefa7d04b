import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
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

describe('EdgeDataStore object lookups', () => {
  it('says which keys some sample names as image or map, by index, past one lookup of 500', async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
    const path = join(dir, 'edge.sqlite');
    store = new EdgeDataStore(path);
    const records: SampleRecord[] = Array.from({ length: 1200 }, (_, seq) => ({
      boot: 0,
      seq,
      frameSeq: seq,
      at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
      class: 'random',
      modelName: 'm',
      modelVersion: '1',
      score: 0.5,
      verdict: 'good',
      objectKey: `samples/d1/0-${seq}.jpg`,
      ...(seq % 3 === 0 ? { mapKey: `samples/d1/0-${seq}-map.png` } : {}),
      bytes: 1,
      sha256: '0'.repeat(64),
    }));
    store.write([{ kind: 'samples', deviceId: 'd1', records }]);
    const asked = Array.from({ length: 1300 }, (_, seq) => [
      `samples/d1/0-${seq}.jpg`,
      `samples/d1/0-${seq}-map.png`,
    ]).flat();
    const named = store.indexedObjects(asked);
    const expected = records.flatMap((r) => (r.mapKey ? [r.objectKey, r.mapKey] : [r.objectKey]));
    expect(named).toEqual(new Set(expected));
    expect(store.indexedObjects([])).toEqual(new Set());

    expect(store.newestSampleAtMs('d1')).toBe(Date.UTC(2026, 0, 1, 0, 0, 1199));
    expect(store.newestSampleAtMs('d2')).toBeUndefined();

    // Each half of the lookup is an index search, never a scan of the sample index.
    const db = new Database(path, { readonly: true });
    try {
      const plan = db
        .prepare(
          `EXPLAIN QUERY PLAN SELECT object_key AS k FROM samples WHERE object_key IN (?, ?)
           UNION SELECT map_key FROM samples WHERE map_key IN (?, ?)`,
        )
        .all('a', 'b', 'a', 'b') as { detail: string }[];
      const details = plan.map((p) => p.detail).join('\n');
      expect(details).toMatch(/SEARCH samples USING COVERING INDEX samples_object/);
      expect(details).toMatch(/SEARCH samples USING COVERING INDEX samples_map/);
      expect(details).not.toMatch(/SCAN samples/);
    } finally {
      db.close();
    }
  });
});
