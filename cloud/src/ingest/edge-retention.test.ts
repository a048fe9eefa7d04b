import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SampleRecord } from '@linesight/protocol';
import type { BlobStore } from '../blobs/blob-store.ts';
import { LocalBlobStore } from '../blobs/local-blob-store.ts';
import { S3BlobStore } from '../blobs/s3-blob-store.ts';
import { startS3TestServer, type S3TestServer } from '../blobs/s3-test-server.ts';
import { ReviewStore } from '../review/review-store.ts';
import { EdgeDataStore } from './edge-data-store.ts';
import { EdgeRetention, type EdgeRetentionDays } from './edge-retention.ts';

let dir: string | undefined;
const closers: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const HOUR_MS = 3_600_000;
const DAYS: EdgeRetentionDays = {
  verdicts: 30,
  verdict_minutes: 30,
  windows: 30,
  events: 30,
  samples: 7,
};

function sample(seq: number, at: string, device = 'd1', map = seq % 2 === 0): SampleRecord {
  return {
    boot: 0,
    seq,
    frameSeq: seq,
    at,
    class: 'random',
    modelName: 'tile',
    modelVersion: '1.0.0',
    score: 0.2,
    verdict: 'good',
    objectKey: `samples/${device}/0-${seq}.jpg`,
    ...(map ? { mapKey: `samples/${device}/0-${seq}-map.png` } : {}),
    bytes: 100,
    sha256: 'ab'.repeat(32),
  };
}

/** A real edge-data store, and a review store on it (labels keep images), in a fresh folder. */
async function stores() {
  dir = await mkdtemp(join(tmpdir(), 'retention-'));
  const edgePath = join(dir, 'edge-data.sqlite');
  const store = new EdgeDataStore(edgePath);
  closers.push(() => store.close());
  const review = new ReviewStore(join(dir, 'review.sqlite'), edgePath, () => []);
  closers.push(() => review.close());
  return { store, review };
}

/** A logger whose lines the test reads. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

function deletedMetric(retention: EdgeRetention): Record<string, number> {
  const metric = retention
    .metrics()
    .find((m) => m.name === 'linesight_retention_objects_deleted_total');
  return Object.fromEntries(metric!.values.map((v) => [v.labels!.reason!, v.value]));
}

function sweepsMetric(retention: EdgeRetention): Record<string, number> {
  const metric = retention
    .metrics()
    .find((m) => m.name === 'linesight_retention_orphan_sweeps_total');
  return Object.fromEntries(metric!.values.map((v) => [v.labels!.outcome!, v.value]));
}

describe('EdgeRetention', () => {
  it("deletes every expired sample's objects, page after page, except those of labelled samples", async () => {
    const { store, review } = await stores();
    // 12,003 old samples (more than two pages of 5,000) and 3 recent ones.
    const old = Array.from({ length: 12_003 }, (_, i) => sample(i, '2026-01-01T00:00:00.000Z'));
    const recent = [0, 1, 2].map((i) => sample(20_000 + i, '2026-01-09T00:00:00.000Z'));
    store.write([{ kind: 'samples', deviceId: 'd1', records: [...old, ...recent] }]);
    // Two old samples were labelled: retraining will read their images and maps.
    for (const seq of [7, 10_000])
      review.addLabel({ deviceId: 'd1', boot: 0, seq, label: 'defect', reviewer: 'r', actor: 'r' });

    const deleted: string[] = [];
    const retention = new EdgeRetention({
      store,
      days: DAYS,
      logger: pino({ level: 'silent' }),
      // Records what it is asked to delete: this test is about which keys, not about storage.
      blobs: {
        delete: async (key) => {
          deleted.push(key);
        },
        list: async function* () {},
      },
      keptObjects: (keys) => review.labelledObjects(keys),
    });
    const now = Date.parse('2026-01-10T00:00:00.000Z');
    const count = await retention.deleteExpiredBlobs(now);
    const rows = retention.enforce(now);
    await retention.close();

    const oldKeys = old.flatMap((s) => (s.mapKey ? [s.objectKey, s.mapKey] : [s.objectKey]));
    const kept = ['samples/d1/0-7.jpg', 'samples/d1/0-10000.jpg', 'samples/d1/0-10000-map.png'];
    expect(count).toBe(oldKeys.length - kept.length);
    expect(new Set(deleted)).toEqual(new Set(oldKeys.filter((k) => !kept.includes(k))));
    expect(deleted).toHaveLength(new Set(deleted).size);
    expect(deletedMetric(retention)).toEqual({ expired: count, orphan: 0 });
    expect(rows.samples).toBe(old.length);
    expect(store.counts().samples).toBe(recent.length);
    // The labels keep their copy of the sample, with the object they point at.
    expect(review.isLabelledObject('samples/d1/0-10000-map.png')).toBe(true);
    expect(review.isLabelledObject('samples/d1/0-8.jpg')).toBe(false);
    expect(review.labelledObjects(['samples/d1/0-10000-map.png', 'samples/d1/0-8.jpg'])).toEqual(
      new Set(['samples/d1/0-10000-map.png']),
    );
  });
});

describe('EdgeRetention orphan sweep, local blob store', () => {
  it('deletes old objects no row or label names once their device moved on, and nothing else', async () => {
    const { store, review } = await stores();
    const blobs = new LocalBlobStore(join(dir!, 'blobs'));
    await blobs.start();
    const now = Date.now();
    const at = (hoursAgo: number) => new Date(now - hoursAgo * HOUR_MS).toISOString();
    /** An object written `hoursAgo` (its file's mtime set back). */
    const put = async (key: string, hoursAgo: number) => {
      await blobs.put(key, new Uint8Array([1, 2, 3]));
      const then = new Date(now - hoursAgo * HOUR_MS);
      await utimes(blobs.localPath(key), then, then);
    };
    // d1 is online: its newest indexed sample was captured an hour ago.
    const indexed = sample(1, at(50), 'd1', true);
    const labelledOld = sample(2, at(10 * 24));
    store.write([
      { kind: 'samples', deviceId: 'd1', records: [indexed, labelledOld, sample(3, at(1))] },
    ]);
    await put(indexed.objectKey, 49); // indexed image: stays
    await put(indexed.mapKey!, 49); // indexed map: stays
    await put(labelledOld.objectKey, 10 * 24 - 1); // labelled, its row goes with retention
    await put(labelledOld.mapKey!, 10 * 24 - 1);
    review.addLabel({
      deviceId: 'd1',
      boot: 0,
      seq: 2,
      label: 'defect',
      reviewer: 'r',
      actor: 'r',
    });
    await put('samples/d1/0-90.jpg', 48); // orphan past the grace: goes
    await put('samples/d1/0-90-map.png', 48); // its map: goes
    await put('samples/d1/0-91.jpg', 2); // young orphan: stays
    // d2 has been offline since it uploaded: its row may still come.
    store.write([{ kind: 'samples', deviceId: 'd2', records: [sample(1, at(100), 'd2')] }]);
    await put('samples/d2/0-1.jpg', 99);
    await put('samples/d2/0-2.jpg', 48); // waits for d2
    await put('samples/d2/0-3.jpg', 8 * 24); // older than the sample retention: goes
    // d3 sent nothing yet; gone was removed from the registry.
    await put('samples/d3/0-1.jpg', 48); // waits
    await put('samples/gone/0-1.jpg', 48); // goes
    await put('models/m/1.0.0/model.onnx', 24 * 30); // not a sample: never looked at

    const { logger, lines } = capturedLogger();
    const retention = new EdgeRetention({
      store,
      days: DAYS,
      logger,
      blobs,
      keptObjects: (keys) => review.labelledObjects(keys),
      orphanGraceHours: 24,
      knownDevice: (id) => id !== 'gone',
      // Two a page: the lookups run page after page.
      orphanPageSize: 2,
    });
    closers.push(() => retention.close());
    // Retention first, as the job runs: the labelled sample's row goes, its objects stay.
    expect(await retention.deleteExpiredBlobs(now)).toBe(0);
    expect(retention.enforce(now).samples).toBe(1);
    expect(store.sample('d1', 0, 2)).toBeUndefined();

    const result = await retention.sweepOrphans(now);
    const left = [];
    for await (const e of blobs.list('')) left.push(e.key);
    expect(new Set(left)).toEqual(
      new Set([
        indexed.objectKey,
        indexed.mapKey,
        labelledOld.objectKey,
        labelledOld.mapKey,
        'samples/d1/0-91.jpg',
        'samples/d2/0-1.jpg',
        'samples/d2/0-2.jpg',
        'samples/d3/0-1.jpg',
        'models/m/1.0.0/model.onnx',
      ]),
    );
    expect(result).toEqual({ listed: 12, deleted: 4, waiting: 2 });
    expect(deletedMetric(retention)).toEqual({ expired: 0, orphan: 4 });
    const logged = lines.filter((l) => l.event === 'retention.orphans');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ listed: 12, deleted: 4, waiting: 2 });

    // d2 comes back and sends a sample captured after its orphan was uploaded: that one goes.
    store.write([{ kind: 'samples', deviceId: 'd2', records: [sample(5, at(0.5), 'd2')] }]);
    expect(await retention.sweepOrphans(now)).toEqual({ listed: 8, deleted: 1, waiting: 1 });
    expect(await blobs.stat('samples/d2/0-2.jpg')).toBeUndefined();
    expect(await blobs.stat('samples/d2/0-1.jpg')).toBeDefined();
    expect(deletedMetric(retention)).toEqual({ expired: 0, orphan: 5 });
  });

  it('runs one sweep at a time, and without a blob store does nothing', async () => {
    const { store } = await stores();
    const blobs = new LocalBlobStore(join(dir!, 'blobs'));
    await blobs.start();
    const retention = new EdgeRetention({
      store,
      days: DAYS,
      logger: pino({ level: 'silent' }),
      blobs,
    });
    closers.push(() => retention.close());
    const first = retention.sweepOrphans();
    expect(retention.sweepOrphans()).toBe(first);
    expect(await first).toEqual({ listed: 0, deleted: 0, waiting: 0 });
    expect(sweepsMetric(retention)).toEqual({ ok: 1, failed: 0 });
    const none = new EdgeRetention({ store, days: DAYS, logger: pino({ level: 'silent' }) });
    expect(await none.sweepOrphans()).toEqual({ listed: 0, deleted: 0, waiting: 0 });
    await none.close();
  });

  it('counts a sweep the storage breaks off as failed, and the next one runs', async () => {
    const { store } = await stores();
    let deny = true;
    const retention = new EdgeRetention({
      store,
      days: DAYS,
      logger: pino({ level: 'silent' }),
      // A bucket policy without s3:ListBucket, then with it.
      blobs: {
        async *list() {
          if (deny) throw new Error('AccessDenied (HTTP 403)');
          yield* [];
        },
        delete: async () => {},
      },
    });
    closers.push(() => retention.close());
    await expect(retention.sweepOrphans()).rejects.toThrow(/AccessDenied/);
    expect(sweepsMetric(retention)).toEqual({ ok: 0, failed: 1 });
    deny = false;
    expect(await retention.sweepOrphans()).toEqual({ listed: 0, deleted: 0, waiting: 0 });
    expect(sweepsMetric(retention)).toEqual({ ok: 1, failed: 1 });
  });
});

describe('EdgeRetention orphan sweep, S3 (s3rver)', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3TestServer();
  });
  afterAll(async () => {
    await s3?.close();
  });

  it('lists the bucket page by page and deletes only the objects no row names', async () => {
    const { store } = await stores();
    const blobs: BlobStore = new S3BlobStore({
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    closers.push(() => blobs.close());
    const indexed = sample(1, new Date().toISOString(), 'd1', true);
    store.write([{ kind: 'samples', deviceId: 'd1', records: [indexed] }]);
    const keys = [
      indexed.objectKey,
      indexed.mapKey!,
      'samples/d1/0-7.jpg',
      'samples/d1/0-7-map.png',
      'samples/d1/0-8.jpg',
      'models/m/1.0.0/model.onnx',
    ];
    for (const key of keys) await blobs.put(key, new Uint8Array([1]));
    const retention = new EdgeRetention({
      store,
      days: DAYS,
      logger: pino({ level: 'silent' }),
      blobs,
      orphanPageSize: 2,
      // The uploads' device has been removed: its orphans go once past the grace.
      knownDevice: () => false,
    });
    closers.push(() => retention.close());
    // The server dates objects now: a sweep as of now leaves them all (inside the grace) ...
    expect(await retention.sweepOrphans()).toEqual({ listed: 5, deleted: 0, waiting: 0 });
    // ... and one as of two days on deletes the three no row names.
    const later = Date.now() + 48 * HOUR_MS;
    expect(await retention.sweepOrphans(later)).toEqual({ listed: 5, deleted: 3, waiting: 0 });
    const left = [];
    for await (const e of blobs.list('')) left.push(e.key);
    expect(new Set(left)).toEqual(
      new Set([indexed.objectKey, indexed.mapKey, 'models/m/1.0.0/model.onnx']),
    );
  });
});
