import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { LinesightError } from '@linesight/protocol';
import type { BlobStore } from '../blobs/blob-store.ts';
import type { ModelVersion } from '../registry/model-registry.ts';
import type { LabelledSample } from '../review/review-store.ts';
import { compareModels } from './compare-models.ts';
import { datasetImageKey, fingerprintOf } from './training-datasets.ts';
import { holdoutSplit } from './holdout-split.ts';
import { nextVersion } from './next-version.ts';
import type {
  DatasetItem,
  JobProgress,
  JobResult,
  RetrainJob,
  RetrainStore,
} from './retrain-store.ts';
import type { RetrainSettings } from './retrain-settings.ts';
import type { SpecSample, TrainSpec } from './train-protocol.ts';
import type { TrainOutcome } from './train-process.ts';

/** What a job needs from the rest of the cloud. */
export interface RetrainJobDeps {
  settings: RetrainSettings;
  store: RetrainStore;
  blobs: BlobStore;
  /** Every registered version of a model name. */
  versions: (name: string) => ModelVersion[];
  /** Labelled samples of a model name (any version), newest label each. */
  labelled: (modelName: string) => LabelledSample[];
  /** Registers a version (validated, stored, signed) as `candidate`. */
  register: (input: {
    name: string;
    version: string;
    onnx: Uint8Array;
    actor: string;
    parentVersion: string;
  }) => Promise<ModelVersion>;
  /** Runs the trainer process on a spec file. */
  train: (
    specPath: string,
    options: { signal: AbortSignal; onProgress: (p: JobProgress) => void },
  ) => Promise<TrainOutcome>;
  /** Folder for the job's files (removed when the job ends). */
  workDir: string;
}

/** How a job ended when it did not throw. */
export type JobEnd =
  | { state: 'registered'; result: JobResult; model: ModelVersion }
  | { state: 'rejected'; result: JobResult; reason: string };

const DOWNLOAD_CONCURRENCY = 4;

/**
 * The champion a job starts from: the version asked for, else the model's
 * production version, else its newest staging one, else its newest version
 * that is not archived.
 */
export function chooseChampion(
  versions: readonly ModelVersion[],
  asked?: string | null,
): ModelVersion {
  const name = versions[0]?.name ?? '?';
  if (asked !== undefined && asked !== null) {
    const found = versions.find((v) => v.version === asked);
    if (found === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `model ${name}@${asked} is not registered`);
    return found;
  }
  const newest = (stage: string) =>
    versions
      .filter((v) => v.stage === stage)
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
  const champion =
    newest('production') ??
    newest('staging') ??
    [...versions]
      .filter((v) => v.stage !== 'archived')
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
  if (champion === undefined)
    throw new LinesightError(
      'ERR_CLOUD_NOT_FOUND',
      versions.length === 0
        ? 'the model has no registered version'
        : `model ${name} has no version that is not archived: name the parent version`,
    );
  return champion;
}

/**
 * One retraining: the parent's registered training set plus the labelled
 * samples (the newest of each label held out), trained in a child process,
 * champion and challenger scored on the held-out set, and the challenger
 * registered as `candidate` only when it wins by the margin. Throws on
 * failure or cancellation, in which case nothing was registered.
 */
export async function runRetrainJob(
  deps: RetrainJobDeps,
  job: RetrainJob,
  champion: ModelVersion,
  signal: AbortSignal,
  progress: (p: JobProgress) => void,
): Promise<JobEnd> {
  const { settings, store, blobs } = deps;
  const checkCancelled = () => {
    if (signal.aborted)
      throw new LinesightError('ERR_TRAINING', 'the job was cancelled', {
        details: { stopped: true },
      });
  };
  const parentFingerprint = champion.contract.datasetFingerprint;
  if (parentFingerprint === undefined)
    throw new LinesightError(
      'ERR_DATASET',
      `${champion.name}@${champion.version} records no dataset fingerprint, so its training data cannot be found`,
    );
  if (store.dataset(parentFingerprint) === undefined)
    throw new LinesightError(
      'ERR_DATASET',
      `the training data of ${champion.name}@${champion.version} (dataset ${parentFingerprint.slice(0, 12)}) is not registered: push it with \`linesight retrain dataset push\``,
    );
  const parentItems = store.datasetItems(parentFingerprint);
  const parentHashes = new Set(parentItems.map((i) => i.sha256));

  const newest = [...deps.labelled(champion.name)]
    .sort((a, b) => Date.parse(b.capturedAt) - Date.parse(a.capturedAt))
    .slice(0, settings.maxLabelledSamples);
  // A labelled image can be gone from storage (deleted by retention before it kept labelled
  // images, or by hand): leave that sample out and count it, rather than fail the job.
  const gone = new Set<LabelledSample>();
  await mapLimit(newest, DOWNLOAD_CONCURRENCY, async (s) => {
    checkCancelled();
    if ((await blobs.stat(s.objectKey)) === undefined) gone.add(s);
  });
  const labelled = newest.filter((s) => !gone.has(s));
  const split = holdoutSplit(labelled, {
    share: settings.holdoutShare,
    minPerLabel: settings.minHoldoutPerLabel,
  });
  const count = (label: string) => split.holdout.filter((s) => s.label === label).length;
  const holdoutGood = count('good');
  const holdoutDefect = count('defect');
  if (holdoutGood < settings.minHoldoutPerLabel || holdoutDefect < settings.minHoldoutPerLabel)
    throw new LinesightError(
      'ERR_DATASET',
      `not enough labelled samples of ${champion.name} to compare on: the held-out set has ${holdoutGood} good and ${holdoutDefect} defect, ${settings.minHoldoutPerLabel} of each are needed (${labelled.length} labelled in all)`,
    );
  const labelledTrain = split.train.filter((s) => !parentHashes.has(s.sha256));
  const duplicates = split.train.length - labelledTrain.length;

  const dir = join(deps.workDir, job.id);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'images'), { recursive: true });
  try {
    // The images: parent data from the dataset store, labelled samples from the device uploads.
    const wanted = new Map<string, string>();
    for (const item of parentItems) wanted.set(item.sha256, datasetImageKey(item.sha256));
    for (const s of [...labelledTrain, ...split.holdout]) wanted.set(s.sha256, s.objectKey);
    const all = [...wanted.entries()];
    let fetched = 0;
    await mapLimit(all, DOWNLOAD_CONCURRENCY, async ([sha256, key]) => {
      checkCancelled();
      const bytes = await readBlob(blobs, key);
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== sha256)
        throw new LinesightError(
          'ERR_DATASET',
          `object ${key} does not hold the image it should (sha256 ${actual.slice(0, 12)}, expected ${sha256.slice(0, 12)})`,
        );
      await writeFile(join(dir, 'images', sha256), bytes);
      fetched++;
      if (fetched % 20 === 0 || fetched === all.length)
        progress({ step: 'dataset', done: fetched, total: all.length });
    });
    checkCancelled();

    const sample = (s: {
      sha256: string;
      label: 'good' | 'defect';
      className: string;
    }): SpecSample => ({
      path: join(dir, 'images', s.sha256),
      label: s.label,
      className: s.className,
    });
    const classOf = (s: LabelledSample) => s.defectClass ?? s.label;
    const trainItems: DatasetItem[] = [
      ...parentItems,
      ...labelledTrain.map((s) => ({ sha256: s.sha256, label: s.label, className: classOf(s) })),
    ];
    const championPath = join(dir, 'champion.onnx');
    await writeFile(championPath, await readBlob(blobs, champion.blobKey));
    const version = nextVersion(deps.versions(champion.name).map((v) => v.version));
    const options = job.options;
    // The labelled samples trained on are the line as it is now: the trainer holds a share of
    // them out to set the challenger's threshold (not the parent data, from before the change).
    const recent = new Set(labelledTrain.map((s) => s.sha256));
    const spec: TrainSpec = {
      train: trainItems.map((item) => ({
        ...sample(item),
        ...(recent.has(item.sha256) ? { recent: true } : {}),
      })),
      holdout: split.holdout.map((s) =>
        sample({ sha256: s.sha256, label: s.label, className: classOf(s) }),
      ),
      championPath,
      outPath: join(dir, 'challenger.onnx'),
      options: {
        seed: options.seed,
        epochs: options.epochs,
        members: options.members,
        size: options.size ?? champion.contract.inputSpec.width,
        name: champion.name,
      },
    };
    const specPath = join(dir, 'spec.json');
    await writeFile(specPath, JSON.stringify(spec));
    const outcome = await deps.train(specPath, { signal, onProgress: progress });
    checkCancelled();

    const datasetFingerprint = fingerprintOf(trainItems);
    if (outcome.datasetFingerprint !== datasetFingerprint)
      throw new LinesightError(
        'ERR_TRAINING',
        `the challenger records dataset ${outcome.datasetFingerprint.slice(0, 12)}, not the ${datasetFingerprint.slice(0, 12)} it was given`,
      );
    const comparison = compareModels(
      outcome.champion,
      outcome.challenger,
      settings.metric,
      settings.minImprovement,
      settings.maxF1Drop,
    );
    const result: JobResult = {
      championVersion: champion.version,
      candidateVersion: null,
      metric: settings.metric,
      minImprovement: settings.minImprovement,
      maxF1Drop: settings.maxF1Drop,
      champion: outcome.champion,
      challenger: outcome.challenger,
      improvement: comparison.improvement,
      parentDatasetFingerprint: parentFingerprint,
      datasetFingerprint,
      labels: {
        train: labelledTrain.map((s) => s.labelId),
        holdout: split.holdout.map((s) => s.labelId),
      },
      counts: {
        parent: parentItems.length,
        labelledTrain: labelledTrain.length,
        holdoutGood,
        holdoutDefect,
        duplicates,
        missingImages: gone.size,
      },
      trainingMs: outcome.trainingMs,
      agreement: outcome.agreement,
      rolloutId: null,
      rolloutError: null,
    };
    if (!comparison.wins) return { state: 'rejected', result, reason: comparison.reason };

    // The challenger's training set becomes a dataset of its own, so a later job can start from it.
    progress({ step: 'register', done: 0, total: 1 });
    for (const s of labelledTrain) {
      const key = datasetImageKey(s.sha256);
      if ((await blobs.stat(key)) === undefined)
        await blobs.put(key, await readFile(join(dir, 'images', s.sha256)));
    }
    checkCancelled();
    store.addDataset({
      fingerprint: datasetFingerprint,
      name: `${champion.name}@${version}`,
      createdBy: job.actor,
      source: 'retrain',
      jobId: job.id,
      items: trainItems,
    });
    const model = await deps.register({
      name: champion.name,
      version,
      onnx: await readFile(spec.outPath),
      actor: job.actor,
      parentVersion: champion.version,
    });
    progress({ step: 'register', done: 1, total: 1 });
    return { state: 'registered', result: { ...result, candidateVersion: version }, model };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readBlob(blobs: BlobStore, key: string): Promise<Buffer> {
  const stream: Readable = await blobs.read(key);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
