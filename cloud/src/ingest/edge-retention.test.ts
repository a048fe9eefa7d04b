import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SampleRecord } from '@linesight/protocol';
import { ReviewStore } from '../review/review-store.ts';
import { EdgeDataStore } from './edge-data-store.ts';
import { EdgeRetention } from './edge-retention.ts';

let dir: string | undefined;
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function sample(seq: number, at: string): SampleRecord {
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
    objectKey: `samples/d1/0-${seq}.jpg`,
    ...(seq % 2 === 0 ? { mapKey: `samples/d1/0-${seq}.map.png` } : {}),
    bytes: 100,
    sha256: 'ab'.repeat(32),
  };
}

describe('EdgeRetention', () => {
  it("deletes every expired sample's objects, page after page, except those of labelled samples", async () => {
    dir = await mkdtemp(join(tmpdir(), 'retention-'));
    const edgePath = join(dir, 'edge-data.sqlite');
    const store = new EdgeDataStore(edgePath);
    closers.push(() => store.close());
    // 12,003 old samples (more than two pages of 5,000) and 3 recent ones.
    const old = Array.from({ length: 12_003 }, (_, i) => sample(i, '2026-01-01T00:00:00.000Z'));
    const recent = [0, 1, 2].map((i) => sample(20_000 + i, '2026-01-09T00:00:00.000Z'));
    store.write([{ kind: 'samples', deviceId: 'd1', records: [...old, ...recent] }]);
    const review = new ReviewStore(join(dir, 'review.sqlite'), edgePath, () => []);
    closers.push(() => review.close());
    // Two old samples were labelled: retraining will read their images and maps.
    for (const seq of [7, 10_000])
      review.addLabel({ deviceId: 'd1', boot: 0, seq, label: 'defect', reviewer: 'r', actor: 'r' });

    const deleted: string[] = [];
    const retention = new EdgeRetention({
      store,
      days: { verdicts: 30, verdict_minutes: 30, windows: 30, events: 30, samples: 7 },
      logger: pino({ level: 'silent' }),
      deleteBlob: async (key) => {
        deleted.push(key);
      },
      keepBlob: (key) => review.isLabelledObject(key),
    });
    const now = Date.parse('2026-01-10T00:00:00.000Z');
    const count = await retention.deleteExpiredBlobs(now);
    const rows = retention.enforce(now);
    await retention.close();

    const oldKeys = old.flatMap((s) => (s.mapKey ? [s.objectKey, s.mapKey] : [s.objectKey]));
    const kept = ['samples/d1/0-7.jpg', 'samples/d1/0-10000.jpg', 'samples/d1/0-10000.map.png'];
    expect(count).toBe(oldKeys.length - kept.length);
    expect(new Set(deleted)).toEqual(new Set(oldKeys.filter((k) => !kept.includes(k))));
    expect(deleted).toHaveLength(new Set(deleted).size);
    expect(rows.samples).toBe(old.length);
    expect(store.counts().samples).toBe(recent.length);
    // The labels keep their copy of the sample, with the object they point at.
    expect(review.isLabelledObject('samples/d1/0-10000.map.png')).toBe(true);
    expect(review.isLabelledObject('samples/d1/0-8.jpg')).toBe(false);
  });
});
