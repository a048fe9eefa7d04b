import { describe, expect, it } from 'vitest';
import { datasetFingerprint, splitDataset } from './dataset-split.ts';
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
