import { sha256Hex } from '@linesight/protocol';
import { createRandom, shuffleInPlace } from './random.ts';
import type { TrainingSample } from './training-sample.ts';

/** Indices of a dataset's samples in each split. */
export interface DatasetSplit {
  train: number[];
  validation: number[];
}

/**
 * Splits samples into train and validation, stratified by label and class,
 * deterministically for a seed and independent of input order (samples are
 * ordered by content hash first). Each class of two or more samples keeps at
 * least one on each side. Recent samples (`TrainingSample.recent`) form
 * strata of their own, by label only, split by `recentValidationShare`
 * (`validationShare` unless given).
 */
export function splitDataset(
  samples: readonly TrainingSample[],
  options: {
    seed: number;
    validationShare: number;
    recentValidationShare?: number;
    sha256?: readonly string[];
  },
): DatasetSplit {
  const { groups, byRank } = shuffledClassGroups(samples, options.seed, options.sha256);
  const split: DatasetSplit = { train: [], validation: [] };
  for (const group of groups) {
    const n = group.length;
    const share =
      samples[group[0] as number]?.recent === true
        ? (options.recentValidationShare ?? options.validationShare)
        : options.validationShare;
    const wanted = Math.round(n * share);
    const take = share > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, wanted)) : 0;
    split.validation.push(...group.slice(0, take));
    split.train.push(...group.slice(take));
  }
  // Canonical (hash) order, so that sums over a split do not depend on input order.
  split.train.sort(byRank);
  split.validation.sort(byRank);
  return split;
}

/**
 * The samples grouped by label and class (groups in name order), each group
 * shuffled for the seed after ordering by content hash: what every split of
 * this file is cut from, so that all are stratified, deterministic and
 * independent of input order. `byRank` sorts indices into canonical (hash) order.
 */
function shuffledClassGroups(
  samples: readonly TrainingSample[],
  seed: number,
  sha256: readonly string[] | undefined,
): { groups: number[][]; byRank: (a: number, b: number) => number } {
  const hashes = sha256 ?? samples.map((s) => sha256Hex(s.image));
  // Recent samples are a stratum by label alone (their share is about the line, not each
  // class), sorted after every other group so that the rest of the data splits as it would
  // without them (a retraining's parent data as the parent model's training split it).
  const keyOf = (i: number): string =>
    samples[i]?.recent === true
      ? `\uffffrecent\u0000${samples[i]?.label}`
      : `${samples[i]?.label}\u0000${samples[i]?.className}`;
  const order = samples
    .map((_, i) => i)
    .sort(
      (a, b) =>
        compare(hashes[a] as string, hashes[b] as string) || compare(keyOf(a), keyOf(b)) || a - b,
    );
  const byKey = new Map<string, number[]>();
  for (const i of order) {
    const key = keyOf(i);
    const group = byKey.get(key) ?? [];
    group.push(i);
    byKey.set(key, group);
  }
  const random = createRandom(seed);
  const groups = [...byKey.keys()]
    .sort(compare)
    .map((key) => shuffleInPlace(byKey.get(key) as number[], random));
  const rank = new Map(order.map((index, position) => [index, position]));
  const byRank = (a: number, b: number): number =>
    (rank.get(a) as number) - (rank.get(b) as number);
  return { groups, byRank };
}

/** Offset of the held-out split's seed from the training seed: a different shuffle than validation's. */
const HOLDOUT_SEED_OFFSET = 1_000_003;

/** A folder's split into images to train on and images held out of training for an honest evaluation. */
export interface HoldoutSplit {
  train: number[];
  heldOut: number[];
  /** What a model trained on `train` records, so an evaluation can rebuild the same split. */
  record: HoldoutRecord;
}

/** The held-out split a model was trained without, as recorded in its contract (`training.holdout`). */
export interface HoldoutRecord {
  share: number;
  seed: number;
  /** Fingerprint of the whole folder the split was taken from. */
  folderFingerprint: string;
  images: number;
}

/**
 * Holds a share of each class out of training (stratified, deterministic for
 * the seed, independent of file order). `model train --holdout` and `bench
 * model` take the same split for the same seed.
 */
export function holdoutSplit(
  samples: readonly TrainingSample[],
  options: { seed: number; share: number; sha256?: readonly string[] },
): HoldoutSplit {
  const hashes = options.sha256 ?? samples.map((s) => sha256Hex(s.image));
  const split = splitDataset(samples, {
    seed: options.seed + HOLDOUT_SEED_OFFSET,
    validationShare: options.share,
    sha256: hashes,
  });
  return {
    train: split.train,
    heldOut: split.validation,
    record: {
      share: options.share,
      seed: options.seed,
      folderFingerprint: datasetFingerprint(samples, hashes),
      images: split.validation.length,
    },
  };
}

/** Hex digits of an image's SHA-256 kept per training image (64 bits: no collision in any real folder). */
export const IMAGE_HASH_PREFIX_HEX = 16;

/**
 * The images a model was trained on, as a model records them
 * (`trainingImages`): sorted, de-duplicated SHA-256 prefixes, about 19 bytes
 * of contract per image.
 */
export function trainingImageHashes(sha256: readonly string[]): string[] {
  return [...new Set(sha256.map((h) => h.slice(0, IMAGE_HASH_PREFIX_HEX)))].sort(compare);
}

/**
 * Indices of the samples a model was trained on, by the image hashes it
 * records (`trainingImages`); empty when it records none.
 */
export function samplesSeenInTraining(
  trainingImages: readonly string[] | undefined,
  samples: readonly TrainingSample[],
): number[] {
  if (trainingImages === undefined || trainingImages.length === 0) return [];
  const seen = new Set(trainingImages);
  const out: number[] = [];
  samples.forEach((s, i) => {
    if (seen.has(sha256Hex(s.image).slice(0, IMAGE_HASH_PREFIX_HEX))) out.push(i);
  });
  return out;
}

/** Identity of a labelled dataset: SHA-256 over the sorted "sha256 label" lines of its samples. */
export function datasetFingerprint(
  samples: readonly TrainingSample[],
  sha256?: readonly string[],
): string {
  const hashes = sha256 ?? samples.map((s) => sha256Hex(s.image));
  const lines = samples.map((s, i) => `${hashes[i]} ${s.label}`).sort(compare);
  return sha256Hex(Buffer.from(lines.join('\n')));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One fold of a k-fold split: train on `train`, evaluate on `heldOut`. */
export interface FoldSplit {
  fold: number;
  train: number[];
  heldOut: number[];
}

/**
 * Stratified k-fold split for cross-validation: every sample is held out in
 * exactly one fold, each class spread over the folds as evenly as its size
 * allows (the classes are dealt one after another, continuing the count, so
 * fold sizes differ by at most one). Deterministic for the seed and
 * independent of input order; the shuffle is the held-out split's (`holdoutSplit`).
 */
export function foldSplits(
  samples: readonly TrainingSample[],
  options: { seed: number; folds: number; sha256?: readonly string[] },
): FoldSplit[] {
  const { folds } = options;
  if (!Number.isInteger(folds) || folds < 2 || folds > samples.length)
    throw new RangeError(`folds must be an integer in 2..${samples.length}, got ${folds}`);
  const { groups, byRank } = shuffledClassGroups(
    samples,
    options.seed + HOLDOUT_SEED_OFFSET,
    options.sha256,
  );
  const foldOf = new Map<number, number>();
  let dealt = 0;
  for (const group of groups) for (const i of group) foldOf.set(i, dealt++ % folds);
  const all = samples.map((_, i) => i).sort(byRank);
  return Array.from({ length: folds }, (_, fold) => ({
    fold,
    train: all.filter((i) => foldOf.get(i) !== fold),
    heldOut: all.filter((i) => foldOf.get(i) === fold),
  }));
}
