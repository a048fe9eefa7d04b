import { sha256Hex } from '@linesight/protocol';
import type { LabelledSample } from './review-store.ts';

/** One image of an exported dataset. */
export interface DatasetItem extends LabelledSample {
  /** The trainer's class name: the defect class, else `good` or `defect`. */
  className: string;
  /** A short-lived download URL of the image, when asked for. */
  imageUrl?: string;
}

/** Labelled samples as a dataset: items, class counts and the trainer's fingerprint. */
export interface DatasetManifest {
  schema: 'linesight.review-dataset/v1';
  createdAt: string;
  /** Labels given before this time count (default: all labels given so far). */
  labelsAsOf: string | null;
  filter: Record<string, string>;
  count: number;
  counts: { good: number; defect: number };
  /**
   * SHA-256 over the sorted "<image sha256> <label>" lines, the formula
   * `linesight model train` records as datasetFingerprint: the same images
   * with the same labels give the same fingerprint, whoever labelled them when.
   */
  fingerprint: string;
  items: DatasetItem[];
}

/** The fingerprint `datasetFingerprint` of @linesight/model gives for these images and labels. */
export function reviewDatasetFingerprint(
  items: readonly Pick<LabelledSample, 'sha256' | 'label'>[],
): string {
  const lines = items
    .map((i) => `${i.sha256} ${i.label}`)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sha256Hex(Buffer.from(lines.join('\n')));
}

/** Builds the manifest of an export. */
export function datasetManifest(
  samples: readonly LabelledSample[],
  options: { filter: Record<string, string>; labelsAsOf: string | null; nowMs?: number },
): DatasetManifest {
  const items = samples.map((s) => ({
    ...s,
    className: s.defectClass ?? s.label,
  }));
  return {
    schema: 'linesight.review-dataset/v1',
    createdAt: new Date(options.nowMs ?? Date.now()).toISOString(),
    labelsAsOf: options.labelsAsOf,
    filter: options.filter,
    count: items.length,
    counts: {
      good: items.filter((i) => i.label === 'good').length,
      defect: items.filter((i) => i.label === 'defect').length,
    },
    fingerprint: reviewDatasetFingerprint(items),
    items,
  };
}
