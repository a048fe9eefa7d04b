import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SampleRecord } from '@linesight/protocol';
import { EdgeDataStore } from '../ingest/edge-data-store.ts';
import { summarizeQuality } from './review-quality.ts';
import { distanceOf, ReviewStore } from './review-store.ts';

let dir: string;
let edge: EdgeDataStore;
let review: ReviewStore;
const thresholds: Record<string, number> = { 'tile@1': 0.5, 'tile@2': 2 };

function sample(
  seq: number,
  cls: SampleRecord['class'],
  score: number | null,
  options: { at?: string; version?: string; boot?: number } = {},
): SampleRecord {
  const version = options.version ?? '1';
  const threshold = thresholds[`tile@${version}`] ?? 0.5;
  return {
    boot: options.boot ?? 0,
    seq,
    frameSeq: seq,
    at: options.at ?? `2026-03-01T10:00:${String(seq % 60).padStart(2, '0')}.000Z`,
    class: cls,
    modelName: cls === 'unknown' ? null : 'tile',
    modelVersion: cls === 'unknown' ? null : version,
    score,
    verdict: score === null ? 'unknown' : score >= threshold ? 'defect' : 'good',
    objectKey: `samples/d/${seq}.jpg`,
    ...(seq % 2 === 0 ? { mapKey: `samples/d/${seq}.png` } : {}),
    bytes: 100 + seq,
    sha256: seq.toString(16).padStart(64, '0'),
  };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'review-store-'));
  edge = new EdgeDataStore(join(dir, 'edge-data.sqlite'));
  review = new ReviewStore(join(dir, 'review.sqlite'), join(dir, 'edge-data.sqlite'), () =>
    Object.entries(thresholds).map(([key, threshold]) => {
      const [name = '', version = ''] = key.split('@');
      return { name, version, threshold };
    }),
  );
});

afterEach(async () => {
  review.close();
  review.close();
  edge.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ReviewStore queue', () => {
  it('orders uncertain by closeness to the threshold, then defects, then random, then unknown', () => {
    edge.write([
      {
        kind: 'samples',
        deviceId: 'd1',
        records: [
          sample(0, 'random', 0.1),
          sample(1, 'defect', 0.95),
          sample(2, 'uncertain', 0.44),
          sample(3, 'uncertain', 0.51),
          sample(4, 'defect', 0.6),
          sample(5, 'unknown', null),
          sample(6, 'uncertain', 0.54),
          // Version 2 has threshold 2: 1.9 is 5 % off, between 0.51 (2 %) and 0.54 (8 %).
          sample(7, 'uncertain', 1.9, { version: '2' }),
          sample(8, 'random', 0.3),
        ],
      },
    ]);
    const { total, entries } = review.queue({});
    expect(total).toBe(9);
    expect(entries.map((e) => e.sample.seq)).toEqual([3, 7, 6, 2, 4, 1, 8, 0, 5]);
    expect(entries[0]?.threshold).toBe(0.5);
    expect(entries[0]?.distance).toBeCloseTo(0.02, 10);
    expect(entries[1]?.threshold).toBe(2);
    expect(entries.at(-1)?.distance).toBeNull();
    // Paging walks the same order.
    const page2 = review.queue({ limit: 4, offset: 4 });
    expect(page2.total).toBe(9);
    expect(page2.entries.map((e) => e.sample.seq)).toEqual([4, 1, 8, 0]);
  });

  it('filters by device, model, version, reason and capture time', () => {
    edge.write([
      {
        kind: 'samples',
        deviceId: 'd1',
        records: [
          sample(0, 'defect', 0.9, { at: '2026-03-01T10:00:00.000Z' }),
          sample(1, 'random', 0.1, { at: '2026-03-02T10:00:00.000Z' }),
          sample(2, 'uncertain', 1.9, { at: '2026-03-03T10:00:00.000Z', version: '2' }),
        ],
      },
      { kind: 'samples', deviceId: 'd2', records: [sample(0, 'defect', 0.8)] },
    ]);
    const seqs = (q: Parameters<ReviewStore['queue']>[0]) =>
      review.queue(q).entries.map((e) => `${e.sample.deviceId}/${e.sample.seq}`);
    expect(seqs({ deviceId: 'd2' })).toEqual(['d2/0']);
    expect(seqs({ modelVersion: '2' })).toEqual(['d1/2']);
    expect(seqs({ modelName: 'other' })).toEqual([]);
    expect(seqs({ sampleClass: 'random' })).toEqual(['d1/1']);
    expect(
      seqs({
        deviceId: 'd1',
        fromMs: Date.parse('2026-03-02T00:00:00Z'),
        toMs: Date.parse('2026-03-03T00:00:00Z'),
      }),
    ).toEqual(['d1/1']);
  });
});

describe('ReviewStore labels', () => {
  it('appends corrections, keeps the history and moves labelled samples out of the queue', () => {
    edge.write([
      {
        kind: 'samples',
        deviceId: 'd1',
        records: [sample(0, 'defect', 0.9), sample(1, 'uncertain', 0.49), sample(2, 'random', 0.1)],
      },
    ]);
    const first = review.addLabel({
      deviceId: 'd1',
      boot: 0,
      seq: 1,
      label: 'good',
      reviewer: 'ann',
      actor: 'admin',
      atMs: Date.parse('2026-03-05T08:00:00Z'),
    });
    expect(first).toMatchObject({
      deviceId: 'd1',
      sampleId: '0-1',
      label: 'good',
      defectClass: null,
      reviewer: 'ann',
      actor: 'admin',
      at: '2026-03-05T08:00:00.000Z',
    });
    expect(review.queue({}).entries.map((e) => e.sample.seq)).toEqual([0, 2]);
    const fixed = review.addLabel({
      deviceId: 'd1',
      boot: 0,
      seq: 1,
      label: 'defect',
      defectClass: 'scratch',
      note: 'faint, upper left',
      reviewer: 'bob',
      actor: 'admin',
    });
    const history = review.history('d1', 0, 1);
    expect(history.map((h) => [h.label, h.reviewer])).toEqual([
      ['good', 'ann'],
      ['defect', 'bob'],
    ]);
    expect(history.at(-1)).toEqual(fixed);
    const labelled = review.queue({ labelled: true });
    expect(labelled.total).toBe(1);
    expect(labelled.entries[0]?.label).toMatchObject({ label: 'defect', defectClass: 'scratch' });
    expect(review.unlabelledCount()).toBe(2);
  });

  it('exports each labelled sample with its newest label, or the newest before a time', () => {
    edge.write([
      {
        kind: 'samples',
        deviceId: 'd1',
        records: [sample(0, 'defect', 0.9), sample(1, 'random', 0.1)],
      },
    ]);
    const at = (t: string) => Date.parse(`2026-03-0${t}T00:00:00Z`);
    const label = (seq: number, l: 'good' | 'defect', day: string) =>
      review.addLabel({
        deviceId: 'd1',
        boot: 0,
        seq,
        label: l,
        reviewer: 'r',
        actor: 'r',
        atMs: at(day),
      });
    label(0, 'good', '2');
    label(1, 'good', '3');
    label(0, 'defect', '4');
    expect(review.labelledSamples({}).map((s) => [s.sampleId, s.label])).toEqual([
      ['0-0', 'defect'],
      ['0-1', 'good'],
    ]);
    expect(review.labelledSamples({ asOfMs: at('4') }).map((s) => [s.sampleId, s.label])).toEqual([
      ['0-0', 'good'],
      ['0-1', 'good'],
    ]);
    expect(review.labelledSamples({ asOfMs: at('3') }).map((s) => s.sampleId)).toEqual(['0-0']);
    expect(review.labelledSamples({ modelVersion: '9' })).toEqual([]);
    expect(review.labelledSamples({})[0]).toMatchObject({
      objectKey: 'samples/d/0.jpg',
      mapKey: 'samples/d/0.png',
      sha256: sample(0, 'defect', 0.9).sha256,
      verdict: 'defect',
      sampleClass: 'defect',
    });
  });

  it('refuses a label for a sample the index does not hold', () => {
    expect(() =>
      review.addLabel({
        deviceId: 'd1',
        boot: 0,
        seq: 9,
        label: 'good',
        reviewer: 'a',
        actor: 'a',
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_CLOUD_NOT_FOUND' }));
    expect(review.history('d1', 0, 9)).toEqual([]);
  });

  it('keeps labels across a reopen and after the sample index drops the sample', () => {
    edge.write([{ kind: 'samples', deviceId: 'd1', records: [sample(0, 'defect', 0.9)] }]);
    review.addLabel({ deviceId: 'd1', boot: 0, seq: 0, label: 'good', reviewer: 'a', actor: 'a' });
    review.close();
    edge.deleteOlderThan('samples', Date.parse('2027-01-01T00:00:00Z'));
    review = new ReviewStore(join(dir, 'review.sqlite'), join(dir, 'edge-data.sqlite'), () => []);
    expect(review.history('d1', 0, 0)).toHaveLength(1);
    expect(review.hasSample('d1', 0, 0)).toBe(false);
    // Its verdict was kept with the label, so it still counts: a false positive.
    expect(review.labelCounts({})).toEqual([
      expect.objectContaining({ deviceId: 'd1', tp: 0, fp: 1, fn: 0, tn: 0 }),
    ]);
  });
});

describe('quality', () => {
  it('counts the current label against the verdict per version, device and day', () => {
    const day1 = '2026-03-01T10:00:00.000Z';
    const day2 = '2026-03-02T10:00:00.000Z';
    edge.write([
      {
        kind: 'samples',
        deviceId: 'd1',
        records: [
          sample(0, 'defect', 0.9, { at: day1 }), // TP
          sample(1, 'defect', 0.8, { at: day1 }), // FP
          sample(2, 'uncertain', 0.45, { at: day1 }), // FN
          sample(3, 'random', 0.1, { at: day2 }), // TN
          sample(4, 'defect', 0.7, { at: day2 }), // TP after a correction
          sample(5, 'unknown', null, { at: day2 }), // unscored
        ],
      },
      { kind: 'samples', deviceId: 'd2', records: [sample(0, 'defect', 0.9, { at: day2 })] }, // FP
    ]);
    const label = (deviceId: string, seq: number, l: 'good' | 'defect') =>
      review.addLabel({ deviceId, boot: 0, seq, label: l, reviewer: 'r', actor: 'r' });
    label('d1', 0, 'defect');
    label('d1', 1, 'good');
    label('d1', 2, 'defect');
    label('d1', 3, 'good');
    label('d1', 4, 'good');
    label('d1', 4, 'defect');
    label('d1', 5, 'defect');
    label('d2', 0, 'good');
    const [v1, ...others] = summarizeQuality(review.labelCounts({ modelName: 'tile' }));
    expect(others).toEqual([]);
    expect(v1?.total).toEqual({
      labelled: 6,
      tp: 2,
      fp: 2,
      fn: 1,
      tn: 1,
      unscored: 0,
      precision: 0.5,
      recall: 2 / 3,
    });
    expect(v1?.daily.map((d) => [d.day, d.precision, d.recall])).toEqual([
      ['2026-03-01T00:00:00.000Z', 0.5, 0.5],
      ['2026-03-02T00:00:00.000Z', 0.5, 1],
    ]);
    expect(v1?.devices.map((d) => [d.deviceId, d.total.precision, d.total.recall])).toEqual([
      ['d1', 2 / 3, 2 / 3],
      ['d2', 0, null],
    ]);
    // The unknown sample has no model; it is counted as unscored under no version.
    const all = summarizeQuality(review.labelCounts({}));
    expect(all.find((v) => v.modelName === null)?.total).toMatchObject({
      labelled: 1,
      unscored: 1,
      precision: null,
      recall: null,
    });
    // Range filters use the capture time.
    const day2Only = summarizeQuality(
      review.labelCounts({ modelName: 'tile', fromMs: Date.parse('2026-03-02T00:00:00Z') }),
    );
    expect(day2Only[0]?.total).toMatchObject({ tp: 1, fp: 1, fn: 0, tn: 1 });
  });

  it('distanceOf is relative to the threshold, absolute for a zero threshold', () => {
    expect(distanceOf(0.45, 0.5)).toBeCloseTo(0.1, 10);
    expect(distanceOf(0.3, 0)).toBeCloseTo(0.3, 10);
    expect(distanceOf(null, 0.5)).toBeNull();
    expect(distanceOf(0.3, null)).toBeNull();
  });
});
