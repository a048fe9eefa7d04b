import { LinesightError, sha256Hex } from '@linesight/protocol';
import type { BlobStore } from '../blobs/blob-store.ts';
import { reviewDatasetFingerprint } from '../review/review-export.ts';
import type { DatasetItem, RetrainStore, TrainingDataset } from './retrain-store.ts';

const SHA256 = /^[0-9a-f]{64}$/;
const CLASS_NAME = /^[A-Za-z0-9][A-Za-z0-9 _./-]{0,63}$/;

/** Blob key of a training image: content-addressed, so datasets share images. */
export function datasetImageKey(sha256: string): string {
  return `datasets/images/${sha256}`;
}

/**
 * The trainer's dataset fingerprint (`datasetFingerprint` of
 * @linesight/model): SHA-256 over the sorted "<image sha256> <label>" lines.
 */
export function fingerprintOf(items: readonly Pick<DatasetItem, 'sha256' | 'label'>[]): string {
  return reviewDatasetFingerprint(items);
}

/** Stores one training image under its content hash; refuses bytes that do not hash to it. */
export async function putDatasetImage(
  blobs: BlobStore,
  sha256: string,
  bytes: Uint8Array,
): Promise<{ stored: boolean }> {
  if (!SHA256.test(sha256))
    throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `not a lower-case hex sha256: ${sha256}`);
  const actual = sha256Hex(bytes);
  if (actual !== sha256)
    throw new LinesightError(
      'ERR_CLOUD_UPLOAD_MISMATCH',
      `the body hashes to ${actual}, not to ${sha256}`,
    );
  const key = datasetImageKey(sha256);
  if ((await blobs.stat(key)) !== undefined) return { stored: false };
  await blobs.put(key, bytes);
  return { stored: true };
}

/**
 * Registers a training dataset: every image must already be stored (see
 * putDatasetImage); the fingerprint is computed here, so it is the one the
 * trainer records in models trained on these images and labels.
 */
export async function registerDataset(
  store: RetrainStore,
  blobs: BlobStore,
  input: { name: string; items: readonly DatasetItem[]; actor: string },
): Promise<TrainingDataset> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [i, item] of input.items.entries()) {
    if (!SHA256.test(item.sha256)) problems.push(`items[${i}].sha256 is not a hex sha256`);
    if (!CLASS_NAME.test(item.className))
      problems.push(`items[${i}].className ${JSON.stringify(item.className)} is not a class name`);
    if (seen.has(item.sha256)) problems.push(`items[${i}] repeats image ${item.sha256}`);
    seen.add(item.sha256);
  }
  const good = input.items.filter((i) => i.label === 'good').length;
  if (good === 0) problems.push('a training dataset needs good images');
  if (problems.length > 0)
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      `invalid dataset: ${problems.slice(0, 10).join('; ')}`,
      {
        details: { problems },
      },
    );
  const missing: string[] = [];
  for (const item of input.items)
    if ((await blobs.stat(datasetImageKey(item.sha256))) === undefined) missing.push(item.sha256);
  if (missing.length > 0)
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      `${missing.length} image(s) of the dataset are not uploaded (PUT /v1/retrain/datasets/images/<sha256> first), e.g. ${missing.slice(0, 3).join(', ')}`,
      { details: { missing } },
    );
  return store.addDataset({
    fingerprint: fingerprintOf(input.items),
    name: input.name,
    createdBy: input.actor,
    source: 'upload',
    items: input.items,
  });
}
