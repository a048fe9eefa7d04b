import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { datasetFingerprint } from '../../../packages/model/src/dataset-split.ts';
import { datasetManifest, reviewDatasetFingerprint } from './review-export.ts';
import type { LabelledSample } from './review-store.ts';

function item(image: string, label: 'good' | 'defect', defectClass: string | null = null) {
  return {
    deviceId: 'd1',
    sampleId: `0-${image.length}`,
    label,
    defectClass,
    objectKey: `samples/${image}.jpg`,
    mapKey: null,
    sha256: createHash('sha256').update(image).digest('hex'),
    bytes: image.length,
    capturedAt: '2026-03-01T00:00:00.000Z',
    sampleClass: 'defect',
    modelName: 'tile',
    modelVersion: '1',
    score: 0.7,
    verdict: 'defect',
    labelId: image.length,
    labelledAt: '2026-03-02T00:00:00.000Z',
    reviewer: 'r',
  } satisfies LabelledSample;
}

describe('review dataset export', () => {
  it('fingerprints as `linesight model train` does for the same images and labels', () => {
    const images = ['a', 'bb', 'ccc', 'dddd'];
    const labels = ['good', 'defect', 'defect', 'good'] as const;
    const items = images.map((img, i) => item(img, labels[i] ?? 'good'));
    const trainer = datasetFingerprint(
      images.map((img, i) => ({
        image: Buffer.from(img),
        label: labels[i] ?? 'good',
        className: labels[i] ?? 'good',
      })),
    );
    expect(reviewDatasetFingerprint(items)).toBe(trainer);
    // Order does not matter; a changed label does.
    expect(reviewDatasetFingerprint([...items].reverse())).toBe(trainer);
    const relabelled = items.map((i, n) => (n === 0 ? { ...i, label: 'defect' as const } : i));
    expect(reviewDatasetFingerprint(relabelled)).not.toBe(trainer);
  });

  it('counts classes and names the trainer class', () => {
    const m = datasetManifest([item('a', 'good'), item('bb', 'defect', 'scratch')], {
      filter: { model: 'tile' },
      labelsAsOf: null,
      nowMs: 0,
    });
    expect(m).toMatchObject({
      schema: 'linesight.review-dataset/v1',
      createdAt: '1970-01-01T00:00:00.000Z',
      count: 2,
      counts: { good: 1, defect: 1 },
      filter: { model: 'tile' },
    });
    expect(m.items.map((i) => i.className)).toEqual(['good', 'scratch']);
  });
});
