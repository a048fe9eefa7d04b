import { describe, expect, it } from 'vitest';
import { datasetFingerprint, foldSplits, holdoutSplit, splitDataset } from './dataset-split.ts';
import type { TrainingSample } from './training-sample.ts';

function samples(good: number, scratch: number, spot: number): TrainingSample[] {
  const out: TrainingSample[] = [];
  let n = 0;
  const add = (label: 'good' | 'defect', className: string, count: number): void => {
    for (let i = 0; i < count; i++)
      out.push({ image: Buffer.from(`image-${n++}`), label, className });
  };
  add('good', 'good', good);
  add('defect', 'scratch', scratch);
  add('defect', 'spot', spot);
  return out;
}

describe('splitDataset', () => {
  it('stratifies by class and covers every sample once', () => {
    const data = samples(40, 8, 2);
    const split = splitDataset(data, { seed: 1, validationShare: 0.25 });
    expect([...split.train, ...split.validation].sort((a, b) => a - b)).toEqual(
      data.map((_, i) => i),
    );
    const count = (indices: number[], className: string): number =>
      indices.filter((i) => data[i]?.className === className).length;
    expect(count(split.validation, 'good')).toBe(10);
    expect(count(split.validation, 'scratch')).toBe(2);
    expect(count(split.validation, 'spot')).toBe(1);
    expect(count(split.train, 'spot')).toBe(1);
  });

  it('is deterministic for a seed, independent of input order, and varies with the seed', () => {
    const data = samples(30, 6, 6);
    const a = splitDataset(data, { seed: 9, validationShare: 0.3 });
    expect(splitDataset(data, { seed: 9, validationShare: 0.3 })).toEqual(a);
    const reversed = [...data].reverse();
    const b = splitDataset(reversed, { seed: 9, validationShare: 0.3 });
    const back = (indices: number[]): number[] => indices.map((i) => data.length - 1 - i);
    expect(back(b.validation)).toEqual(a.validation);
    expect(back(b.train)).toEqual(a.train);
    expect(splitDataset(data, { seed: 10, validationShare: 0.3 }).validation).not.toEqual(
      a.validation,
    );
  });

  it('keeps a single sample in training and allows no validation at all', () => {
    expect(splitDataset(samples(1, 0, 0), { seed: 1, validationShare: 0.5 })).toEqual({
      train: [0],
      validation: [],
    });
    const none = splitDataset(samples(5, 2, 0), { seed: 1, validationShare: 0 });
    expect(none.validation).toEqual([]);
    expect(none.train).toHaveLength(7);
  });
});

describe('splitDataset with recent samples', () => {
  /** `count` recent samples of a label, spread over defect classes as a review queue labels them. */
  const recentOnes = (label: 'good' | 'defect', count: number, from: number): TrainingSample[] =>
    Array.from({ length: count }, (_, i) => ({
      image: Buffer.from(`recent-${from + i}`),
      label,
      className: label === 'good' ? 'good' : (['scratch', 'spot', 'crack'][i % 3] ?? 'spot'),
      recent: true,
    }));

  it('holds out its own share of each recent label and leaves the rest split as without them', () => {
    const older = samples(40, 8, 2);
    const data = [...older, ...recentOnes('good', 10, 0), ...recentOnes('defect', 10, 100)];
    const split = splitDataset(data, {
      seed: 3,
      validationShare: 0.25,
      recentValidationShare: 0.4,
    });
    expect([...split.train, ...split.validation].sort((a, b) => a - b)).toEqual(
      data.map((_, i) => i),
    );
    const recentIn = (indices: number[], label: string) =>
      indices.filter((i) => data[i]?.recent === true && data[i]?.label === label).length;
    // 40 % of each label, not at least one of each of the three defect classes.
    expect(recentIn(split.validation, 'good')).toBe(4);
    expect(recentIn(split.validation, 'defect')).toBe(4);
    // The older samples split exactly as they do alone.
    const alone = splitDataset(older, { seed: 3, validationShare: 0.25 });
    expect(split.validation.filter((i) => i < older.length)).toEqual(alone.validation);
    expect(split.train.filter((i) => i < older.length)).toEqual(alone.train);
  });

  it('gives recent samples the validation share unless told otherwise', () => {
    const data = [...samples(10, 5, 0), ...recentOnes('good', 10, 0)];
    const split = splitDataset(data, { seed: 1, validationShare: 0.2 });
    expect(split.validation.filter((i) => data[i]?.recent === true)).toHaveLength(2);
  });
});

describe('foldSplits', () => {
  const count = (data: TrainingSample[], indices: number[], className: string): number =>
    indices.filter((i) => data[i]?.className === className).length;

  it('holds every sample out exactly once, trains on the rest, and stratifies each class', () => {
    const data = samples(53, 11, 3);
    const folds = foldSplits(data, { seed: 4, folds: 5 });
    expect(folds.map((f) => f.fold)).toEqual([0, 1, 2, 3, 4]);
    const heldOut = folds.flatMap((f) => f.heldOut).sort((a, b) => a - b);
    expect(heldOut).toEqual(data.map((_, i) => i));
    for (const f of folds) {
      expect([...f.train, ...f.heldOut].sort((a, b) => a - b)).toEqual(data.map((_, i) => i));
      expect(f.train.filter((i) => f.heldOut.includes(i))).toEqual([]);
      // 53 good over 5 folds: 10 or 11 each; 11 scratches: 2 or 3; 3 spots: 0 or 1.
      expect(count(data, f.heldOut, 'good')).toBeGreaterThanOrEqual(10);
      expect(count(data, f.heldOut, 'good')).toBeLessThanOrEqual(11);
      expect(count(data, f.heldOut, 'scratch')).toBeGreaterThanOrEqual(2);
      expect(count(data, f.heldOut, 'scratch')).toBeLessThanOrEqual(3);
      expect(count(data, f.heldOut, 'spot')).toBeLessThanOrEqual(1);
    }
    const sizes = folds.map((f) => f.heldOut.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('is deterministic for a seed, independent of input order, and varies with the seed', () => {
    const data = samples(40, 10, 5);
    const a = foldSplits(data, { seed: 2, folds: 4 });
    expect(foldSplits(data, { seed: 2, folds: 4 })).toEqual(a);
    const back = (indices: number[]): number[] =>
      indices.map((i) => data.length - 1 - i).sort((x, y) => x - y);
    const reversed = foldSplits([...data].reverse(), { seed: 2, folds: 4 });
    for (const [k, f] of reversed.entries()) {
      expect(back(f.heldOut)).toEqual([...(a[k]?.heldOut ?? [])].sort((x, y) => x - y));
    }
    expect(foldSplits(data, { seed: 3, folds: 4 })[0]?.heldOut).not.toEqual(a[0]?.heldOut);
  });

  it('uses the held-out split shuffle and rejects impossible fold counts', () => {
    const data = samples(20, 8, 0);
    // Two folds cut each shuffled class in half, as a 50 % held-out split does.
    const two = foldSplits(data, { seed: 7, folds: 2 });
    const holdout = holdoutSplit(data, { seed: 7, share: 0.5 });
    expect(two[0]?.heldOut.length).toBe(holdout.heldOut.length);
    expect(() => foldSplits(data, { seed: 1, folds: 1 })).toThrow(RangeError);
    expect(() => foldSplits(data, { seed: 1, folds: 29 })).toThrow(RangeError);
    expect(() => foldSplits(data, { seed: 1, folds: 2.5 })).toThrow(RangeError);
  });
});

describe('datasetFingerprint', () => {
  it('depends on content and labels, not order or class names', () => {
    const data = samples(3, 1, 1);
    const fp = datasetFingerprint(data);
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(datasetFingerprint([...data].reverse())).toBe(fp);
    expect(datasetFingerprint(data.map((s) => ({ ...s, className: 'x' })))).toBe(fp);
    expect(
      datasetFingerprint(data.map((s, i) => (i === 0 ? { ...s, label: 'defect' as const } : s))),
    ).not.toBe(fp);
    expect(datasetFingerprint(data.slice(1))).not.toBe(fp);
  });
});
