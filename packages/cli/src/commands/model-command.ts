import { constants } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { LinesightError } from '@linesight/protocol';
import { readModelContract } from '@linesight/vision';
import {
  datasetFingerprint,
  evaluateModel,
  holdoutSplit,
  readImageFolder,
  samplesSeenInTraining,
  trainDefectModel,
  type FolderSample,
  type HoldoutRecord,
  type ImageFolderDataset,
  type MapSource,
  type TrainingMode,
  type TrainingProgress,
  type TrainingSample,
} from '@linesight/model';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';
import { progressLine } from '../progress.ts';
import { parseShare } from '../options.ts';

function parseSeed(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected a whole number of at least 0');
  return n;
}

/** Reads a dataset folder, listing skipped files and the classes on stderr. */
export async function readDatasetVerbose(
  dir: string,
  goodClass: string,
): Promise<ImageFolderDataset> {
  const dataset = await readImageFolder(dir, {
    goodClass,
    onProgress: (done, total) => progressLine(`reading images ${done}/${total}`),
  });
  progressLine('');
  for (const s of dataset.skipped) console.error(`skipped ${s.path}: ${s.reason}`);
  console.error(
    `dataset: ${Object.entries(dataset.classes)
      .map(([c, n]) => `${c}=${n}`)
      .join(' ')} (good class: ${goodClass})` +
      (dataset.skipped.length > 0 ? `, ${dataset.skipped.length} unreadable file(s) skipped` : ''),
  );
  return dataset;
}

/** A progress printer for training: step, epoch, loss and ETA of the slow step. */
export function trainingProgressPrinter(): (p: TrainingProgress) => void {
  return (p) => {
    let text = `${p.step} ${p.done}/${p.total}`;
    if (p.epoch !== undefined) text += ` epoch ${p.epoch}/${p.epochs ?? '?'}`;
    if (p.loss !== undefined) text += ` loss ${p.loss.toFixed(4)}`;
    if (p.elapsedMs !== undefined && p.done > 0) {
      const etaSec = ((p.elapsedMs / p.done) * (p.total - p.done)) / 1000;
      text += ` eta ${etaSec.toFixed(0)} s`;
    }
    progressLine(text);
  };
}

/** `linesight model`: train, evaluate and publish models. */
export function modelCommand(): Command {
  const model = new Command('model').description(
    'train, evaluate and publish defect-detection models',
  );

  model
    .command('train')
    .description(
      'train an ONNX defect model from a folder of labelled images (one subfolder per class)',
    )
    .requiredOption(
      '--data <dir>',
      'dataset folder: <class>/*.jpg, masks as <stem>.png beside them',
    )
    .requiredOption('--out <file.onnx>', 'where to write the model')
    .option('--good <class>', 'name of the defect-free class', 'good')
    .addOption(
      new Option(
        '--mode <mode>',
        'supervised (needs defect examples; a cell classifier), anomaly (good images only; a per-position Gaussian of good parts) or auto (supervised when defects exist)',
      )
        .choices(['supervised', 'anomaly', 'auto'])
        .default('auto'),
    )
    .option(
      '--seed <n>',
      'random seed (same data and seed give the same model bytes)',
      parseSeed,
      1,
    )
    .option('--size <px>', 'model input side in pixels (multiple of 8)', parseSeed, 256)
    .option(
      '--epochs <n>',
      'training epochs of the cell classifier (supervised mode)',
      parseSeed,
      30,
    )
    .option(
      '--members <n>',
      'classifiers averaged in the model, supervised mode (each adds its training time)',
      parseSeed,
      1,
    )
    .addOption(
      new Option(
        '--map <source>',
        "where a supervised model's anomaly map comes from: masks (learnt from the defect masks beside the images), padim (distance from good parts) or auto (masks when enough exist and they place the validation defects better)",
      )
        .choices(['auto', 'masks', 'padim'])
        .default('auto'),
    )
    .option(
      '--holdout <share>',
      'hold this share of each class out of training (recorded in the model, so `model eval --holdout` scores exactly those images)',
      parseShare,
    )
    .action(
      async (opts: {
        data: string;
        out: string;
        good: string;
        mode: TrainingMode;
        seed: number;
        size: number;
        epochs: number;
        members: number;
        map: MapSource;
        holdout?: number;
      }) => {
        const started = Date.now();
        // The output's folder is made (and found writable) now, not after minutes of training.
        await mkdir(dirname(resolve(opts.out)), { recursive: true });
        await access(dirname(resolve(opts.out)), constants.W_OK);
        const dataset = await readDatasetVerbose(opts.data, opts.good);
        const holdout =
          opts.holdout !== undefined && opts.holdout > 0
            ? holdoutSplit(dataset.samples, { seed: opts.seed, share: opts.holdout })
            : undefined;
        const samples =
          holdout === undefined
            ? dataset.samples
            : holdout.train.map((i) => dataset.samples[i] as FolderSample);
        if (holdout !== undefined)
          console.error(
            `holding out ${holdout.heldOut.length} of ${dataset.samples.length} images (${opts.holdout} of each class, seed ${opts.seed}) for \`model eval --holdout\``,
          );
        const trained = await trainDefectModel(samples, {
          ...(holdout !== undefined ? { holdout: holdout.record } : {}),
          seed: opts.seed,
          mode: opts.mode,
          size: opts.size,
          epochs: opts.epochs,
          members: opts.members,
          map: opts.map,
          name: basename(opts.out, '.onnx').slice(0, 64) || 'defect-model',
          onProgress: trainingProgressPrinter(),
        });
        progressLine('');
        await writeFile(opts.out, trained.onnx);
        const m = trained.metrics;
        const t = trained.contract.training ?? {};
        console.error(
          `trained (${trained.mode}) in ${((Date.now() - started) / 1000).toFixed(1)} s -> ${opts.out} (${trained.onnx.byteLength} bytes)\n` +
            `train: good=${String(t.trainGood)} defect=${String(t.trainDefect)} synthetic=${String(t.trainSynthetic)} scorer=${String(t.scorer)}${t.finalLoss === undefined ? '' : ` final loss=${fmt(t.finalLoss as number | null)}`}\n` +
            `validation: images=${m.images} good=${m.good} defect=${m.defect} auroc=${fmt(m.auroc)} ap=${fmt(m.ap)} threshold=${fmt(m.threshold)} (${String(t.thresholdRule)}) precision=${fmt(m.precision)} recall=${fmt(m.recall)} f1=${fmt(m.f1)}` +
            (t.map === undefined
              ? ''
              : `\nmap: ${String(t.map)} (${String(t.mapHeadMasks)} training defects with masks)${t.mapHeadSkipped === undefined ? '' : `: ${String(t.mapHeadSkipped)}`}`),
        );
      },
    );

  model
    .command('eval')
    .description('evaluate an ONNX model on a labelled image folder')
    .requiredOption('--model <file.onnx>', 'model to evaluate')
    .requiredOption('--data <dir>', 'dataset folder, laid out as for train')
    .option('--good <class>', 'name of the defect-free class', 'good')
    .option(
      '--holdout',
      'score only the images the model was trained without (it must have been trained on this folder with `model train --holdout`)',
    )
    .option(
      '--unseen-only',
      'score only the images the model was not trained on (by the image hashes it records)',
    )
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (opts: {
        model: string;
        data: string;
        good: string;
        holdout?: boolean;
        unseenOnly?: boolean;
        json?: boolean;
      }) => {
        if (opts.holdout && opts.unseenOnly)
          throw new LinesightError(
            'ERR_CLI_USAGE',
            '--holdout and --unseen-only are two ways to choose the images: give one',
          );
        const dataset = await readDatasetVerbose(opts.data, opts.good);
        const onnx = await readFile(opts.model);
        const evalSamples = opts.holdout
          ? heldOutSamples(onnx, dataset.samples)
          : opts.unseenOnly
            ? unseenSamples(onnx, dataset.samples)
            : dataset.samples;
        const overlap =
          opts.holdout || opts.unseenOnly ? undefined : trainingOverlap(onnx, dataset.samples);
        if (overlap !== undefined) console.error(`warning: ${overlap}`);
        if (opts.holdout || opts.unseenOnly)
          console.error(
            `scoring the ${evalSamples.length} ${opts.holdout ? 'held-out' : 'unseen'} images of ${dataset.samples.length}`,
          );
        const metrics = await evaluateModel(onnx, evalSamples, {
          onProgress: (done, total) => progressLine(`scoring ${done}/${total}`),
        });
        progressLine('');
        const result = {
          ...metrics,
          skipped: dataset.skipped.map((s) => s.path),
          ...(overlap !== undefined ? { warnings: [overlap] } : {}),
        };
        if (opts.json) {
          console.log(JSON.stringify(result));
        } else {
          console.log(`images=${metrics.images} good=${metrics.good} defect=${metrics.defect}`);
          console.log(
            `auroc=${fmt(metrics.auroc)} ap=${fmt(metrics.ap)} pixelAuroc=${fmt(metrics.pixelAuroc)} threshold=${fmt(metrics.threshold)} precision=${fmt(metrics.precision)} recall=${fmt(metrics.recall)} f1=${fmt(metrics.f1)}`,
          );
          for (const [cls, auroc] of Object.entries(metrics.perClass))
            console.log(`  ${cls}: auroc=${fmt(auroc)}`);
        }
      },
    );

  const publish = model
    .command('publish')
    .description('register a model version in the cloud (the cloud signs its manifest)')
    .argument('<file.onnx>', 'model file')
    .requiredOption('--name <name>', 'model name: lower-case a-z 0-9 _ . -')
    .requiredOption('--version <semver>', 'version, e.g. 1.0.0');
  withCloudCall(publish).action(
    async (
      file: string,
      opts: { name: string; version: string; cloud?: string; token?: string; dataDir: string },
    ) => {
      const { api } = await cloudClient(opts);
      const published = await api.publishModel({
        name: opts.name,
        version: opts.version,
        onnx: await readFile(file),
        fileName: basename(file),
      });
      console.log(
        `published ${published.name}@${published.version} sha256=${published.sha256} threshold=${fmt(published.threshold)}`,
      );
    },
  );

  withCloudCall(
    model
      .command('list')
      .description('list registered model versions, newest first')
      .option('--json', 'print JSON'),
  ).action(async (opts: CloudCallOptions & { json?: boolean }) => {
    const list = await (await cloudClient(opts)).api.listModels();
    if (opts.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log('no model versions');
    else
      for (const m of list)
        console.log(
          `${m.name}@${m.version}  ${m.stage}  ${m.kind}  threshold ${fmt(m.threshold)}  ${m.sizeBytes} bytes  by ${m.createdBy}${m.approvedBy ? `, approved by ${m.approvedBy}` : ''}`,
        );
  });
  withCloudCall(
    model
      .command('show')
      .description('show one model version with its signed manifest')
      .argument('<name@version>', 'e.g. tile@1.0.0')
      .option('--json', 'print JSON on one line'),
  ).action(async (ref: string, opts: CloudCallOptions & { json?: boolean }) => {
    const [name, version] = parseModelRef(ref);
    const m = await (await cloudClient(opts)).api.getModel(name, version);
    console.log(opts.json ? JSON.stringify(m) : JSON.stringify(m, null, 2));
  });
  withCloudCall(
    model
      .command('stage')
      .description(
        'move a version to candidate, staging, production (needs an approval) or archived',
      )
      .argument('<name@version>', 'e.g. tile@1.0.0')
      .argument('<stage>', 'candidate, staging, production or archived'),
  ).action(async (ref: string, stage: string, opts: CloudCallOptions) => {
    const [name, version] = parseModelRef(ref);
    const m = await (await cloudClient(opts)).api.stageModel(name, version, stage);
    console.log(`${m.name}@${m.version} is now ${m.stage}`);
  });
  withCloudCall(
    model
      .command('approve')
      .description(
        'approve a version for production (by another actor than the one who published it)',
      )
      .argument('<name@version>', 'e.g. tile@1.0.0'),
  ).action(async (ref: string, opts: CloudCallOptions) => {
    const [name, version] = parseModelRef(ref);
    const m = await (await cloudClient(opts)).api.approveModel(name, version);
    console.log(`${m.name}@${m.version} approved by ${m.approvedBy ?? '?'}`);
  });

  return model;
}

/**
 * Why these metrics say little about new images, when the evaluation set holds
 * images the model was trained on: all of them (its recorded dataset
 * fingerprint equals this set's), all but its held-out share (`--holdout`), or
 * some (by the per-image hashes it records, `trainingImages`).
 */
export function trainingOverlap(
  onnx: Uint8Array,
  samples: readonly TrainingSample[],
): string | undefined {
  let fingerprint: string | undefined;
  try {
    fingerprint = readModelContract(onnx).datasetFingerprint;
  } catch {
    return undefined; // No contract: evaluateModel reports that.
  }
  const here = datasetFingerprint(samples);
  if (holdoutOf(onnx)?.folderFingerprint === here)
    return 'the model was trained on most of this folder (all but its held-out share): the metrics mix fit with generalization; use --holdout to score only the images it never saw';
  if (fingerprint !== undefined && fingerprint === here)
    return 'this is the dataset the model was trained on (same images and labels by content hash): the metrics measure fit, not how it does on new images; evaluate on images kept out of training';
  const seen = samplesSeenInTraining(trainingImagesOf(onnx), samples);
  if (seen.length === 0) return undefined;
  const names = seen
    .slice(0, 3)
    .map((i) => (samples[i] as { path?: string }).path ?? `#${i}`)
    .join(', ');
  const share = ((100 * seen.length) / samples.length).toFixed(1);
  return `${seen.length} of ${samples.length} images here (${share} %) were in the model's training set by content hash (${names}${seen.length > 3 ? ', ...' : ''}): the metrics mix fit with generalization; use --unseen-only to score only the others`;
}

/** The image hashes a model records (`trainingImages`), if any. */
function trainingImagesOf(onnx: Uint8Array): readonly string[] | undefined {
  try {
    return readModelContract(onnx).trainingImages;
  } catch {
    return undefined;
  }
}

/**
 * The images of a folder the model was not trained on, by the image hashes it
 * records. Refuses a model that records none (trained before it did) and a
 * folder with no unseen image.
 */
export function unseenSamples<T extends TrainingSample>(
  onnx: Uint8Array,
  samples: readonly T[],
): T[] {
  const recorded = trainingImagesOf(onnx);
  if (recorded === undefined)
    throw new LinesightError(
      'ERR_CLI_USAGE',
      'the model records no training image hashes (it was trained by an older version): evaluate on a folder of new images without --unseen-only',
    );
  const seen = new Set(samplesSeenInTraining(recorded, samples));
  const unseen = samples.filter((_, i) => !seen.has(i));
  if (unseen.length === 0)
    throw new LinesightError(
      'ERR_CLI_USAGE',
      `every one of the ${samples.length} images here was in the model's training set: there is nothing unseen to score`,
    );
  return unseen;
}

/** The held-out split a model records (`model train --holdout`), if any. */
function holdoutOf(onnx: Uint8Array): HoldoutRecord | undefined {
  try {
    const h = readModelContract(onnx).training?.holdout as HoldoutRecord | undefined;
    return h !== undefined && typeof h.folderFingerprint === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The images of a folder the model was trained without: the split it records,
 * taken again from the same folder. Refuses a model without one and a folder
 * that is not the one it was split from (the split would not be the same).
 */
export function heldOutSamples<T extends TrainingSample>(
  onnx: Uint8Array,
  samples: readonly T[],
): T[] {
  const record = holdoutOf(onnx);
  if (record === undefined)
    throw new LinesightError(
      'ERR_CLI_USAGE',
      'the model records no held-out split: train it with `model train --holdout <share>` on this folder, or evaluate on a folder of new images without --holdout',
    );
  const split = holdoutSplit(samples, { seed: record.seed, share: record.share });
  if (split.record.folderFingerprint !== record.folderFingerprint)
    throw new LinesightError(
      'ERR_CLI_USAGE',
      `this folder is not the one the model's held-out split was taken from (${record.images} images held out of a folder with another fingerprint): its held-out images cannot be found here`,
    );
  return split.heldOut.map((i) => samples[i] as T);
}

/** Splits `name@version`. */
export function parseModelRef(ref: string): [string, string] {
  const at = ref.lastIndexOf('@');
  if (at <= 0 || at === ref.length - 1)
    throw new InvalidArgumentError(
      `expected name@version, e.g. tile@1.0.0 (got ${JSON.stringify(ref)})`,
    );
  return [ref.slice(0, at), ref.slice(at + 1)];
}

function fmt(n: number | null | undefined): string {
  return n === null || n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(4);
}
