import { loadavg } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  evaluateModel,
  foldSplits,
  holdoutSplit,
  trainDefectModel,
  type FolderSample,
  type MapSource,
} from '@linesight/model';
import { OnnxModel, decodeImagePixels, rawToTensor } from '@linesight/vision';
import { progressLine } from '../progress.ts';
import {
  meanOrNull,
  minOrNull,
  stdOrNull,
  summarizeFolds,
  type FoldRun,
  type ModelBenchRun,
} from '../bench/fold-summary.ts';
import { readDatasetVerbose, trainingProgressPrinter } from './model-command.ts';

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected a whole number of at least 0');
  return n;
}

type BenchMode = 'supervised' | 'anomaly' | 'auto';

interface ModelBenchOptions {
  data: string;
  good: string;
  mode: BenchMode | 'both';
  seed: number;
  repeats: number;
  folds: number;
  testShare: number;
  epochs: number;
  members: number;
  map: MapSource;
  trainThreads?: number;
  frames: number;
  json?: boolean;
}

/**
 * `linesight bench model`: trains on part of a labelled folder and evaluates
 * the exported ONNX on the rest, either on one held-out split per seed or by
 * stratified k-fold cross-validation (`--folds N`), in one or both modes.
 */
export function modelBenchCommand(): Command {
  return new Command('model')
    .description(
      'train on part of a labelled folder, evaluate on the held-out rest (one split or k folds), time inference',
    )
    .requiredOption('--data <dir>', 'dataset folder, laid out as for `model train`')
    .option('--good <class>', 'name of the defect-free class', 'good')
    .addOption(
      new Option('--mode <mode>', 'training mode; both = anomaly, then supervised')
        .choices(['supervised', 'anomaly', 'auto', 'both'])
        .default('auto'),
    )
    .option('--seed <n>', 'seed of the held-out split or folds, and of training', parseCount, 1)
    .option(
      '--repeats <n>',
      'repeat with seeds seed..seed+n-1 and report mean and spread (held-out split only)',
      parseCount,
      1,
    )
    .option(
      '--folds <n>',
      'stratified k-fold cross-validation: train k times, each fold held out once; mean and spread',
      parseCount,
      0,
    )
    .option('--test-share <x>', 'share of each class held out for testing', Number, 0.25)
    .option('--epochs <n>', 'training epochs of the cell classifier', parseCount, 30)
    .option('--members <n>', 'cell classifiers trained and averaged in one model', parseCount, 1)
    .addOption(
      new Option(
        '--map <source>',
        "where a supervised model's map comes from (as `model train --map`): auto, masks or padim",
      )
        .choices(['auto', 'masks', 'padim'])
        .default('auto'),
    )
    .option(
      '--train-threads <n>',
      "threads computing the classifier's gradients (default 2; the model's bytes do not depend on it)",
      parseCount,
    )
    .option('--frames <n>', 'frames timed per thread count', parseCount, 200)
    .option('--json', 'print one line of JSON (the default indents it)')
    .action(async (opts: ModelBenchOptions) => {
      if (!(opts.testShare > 0 && opts.testShare < 1))
        throw new InvalidArgumentError('--test-share must be in (0, 1)');
      if (opts.folds === 1) throw new InvalidArgumentError('--folds must be 0 (off) or at least 2');
      if (opts.folds > 1 && opts.repeats > 1)
        throw new InvalidArgumentError('--repeats applies to the held-out split, not to --folds');
      const dataset = await readDatasetVerbose(opts.data, opts.good);
      const modes: BenchMode[] = opts.mode === 'both' ? ['anomaly', 'supervised'] : [opts.mode];
      const results: Record<string, unknown> = {};
      for (const mode of modes) {
        results[mode] =
          opts.folds > 1
            ? await benchFolds(dataset.samples, { ...opts, mode })
            : await benchHoldout(dataset.samples, { ...opts, mode });
      }
      const summary =
        modes.length === 1
          ? results[modes[0] as BenchMode]
          : { dataset: opts.data, mode: 'both', ...results };
      console.log(opts.json === true ? JSON.stringify(summary) : JSON.stringify(summary, null, 2));
    });
}

/** K-fold cross-validation of one mode: per fold on stderr, mean and spread in the result. */
async function benchFolds(
  samples: FolderSample[],
  opts: ModelBenchOptions & { mode: BenchMode },
): Promise<Record<string, unknown>> {
  const loadBefore = loadavg();
  const runs: FoldRun[] = [];
  for (const fold of foldSplits(samples, { seed: opts.seed, folds: opts.folds })) {
    const run = await benchOnce(samples, fold.train, fold.heldOut, opts);
    runs.push({ fold: fold.fold, ...run });
    console.error(
      `${opts.mode} fold ${fold.fold + 1}/${opts.folds}: AUROC ${fmt(run.auroc)} pixel ${fmt(run.pixelAuroc)} ` +
        `${Object.entries(run.perClass)
          .map(([c, v]) => `${c} ${fmt(v)}`)
          .join(' ')} train ${run.trainingSeconds.toFixed(1)} s`,
    );
  }
  const summary = summarizeFolds(runs);
  console.error(
    `${opts.mode} ${opts.folds} folds: AUROC ${fmt(summary.aurocMean)} ± ${fmt(summary.aurocStd)}, pixel ${fmt(summary.pixelAurocMean)}; ` +
      `${Object.entries(summary.perClass)
        .map(([c, v]) => `${c} ${fmt(v)}`)
        .join(' ')}`,
  );
  return {
    dataset: opts.data,
    mode: opts.mode,
    folds: opts.folds,
    seed: opts.seed,
    members: opts.members,
    map: opts.map,
    trainThreads: opts.trainThreads ?? 2,
    ...summary,
    loadAverage: { before: loadBefore.map(round2), after: loadavg().map(round2) },
  };
}

/** One held-out split per seed (seed..seed+repeats-1), as before folds existed. */
async function benchHoldout(
  samples: FolderSample[],
  opts: ModelBenchOptions & { mode: BenchMode },
): Promise<Record<string, unknown>> {
  const runs: BenchRun[] = [];
  for (let r = 0; r < Math.max(1, opts.repeats); r++) {
    const seed = opts.seed + r;
    // The held-out test split is disjoint from everything the trainer sees (it splits validation off its own part).
    const split = holdoutSplit(samples, { seed, share: opts.testShare });
    const run = await benchOnce(samples, split.train, split.heldOut, { ...opts, seed });
    console.error(`bench seed ${seed}: ${JSON.stringify(run)}`);
    runs.push(run);
  }
  const first = runs[0] as BenchRun;
  const summary: Record<string, unknown> = {
    ...first,
    dataset: opts.data,
    mode: opts.mode,
    members: opts.members,
    map: opts.map,
    trainThreads: opts.trainThreads ?? 2,
  };
  if (runs.length > 1) {
    summary.repeats = runs.length;
    summary.runs = runs;
    for (const key of ['auroc', 'pixelAuroc', 'trainingSeconds'] as const) {
      const values = runs.map((run) => run[key]).filter((v): v is number => v !== null);
      // The same statistics as the folds' summary (sample standard deviation).
      summary[key] = meanOrNull(values);
      summary[`${key}Std`] = stdOrNull(values);
      summary[`${key}Min`] = minOrNull(values);
    }
  }
  return summary;
}

interface BenchRun extends ModelBenchRun {
  seed: number;
}

/** Trains on `trainIndices`, evaluates the exported ONNX on `testIndices` with ONNX Runtime, times inference. */
async function benchOnce(
  samples: FolderSample[],
  trainIndices: readonly number[],
  testIndices: readonly number[],
  opts: {
    seed: number;
    mode: BenchMode;
    epochs: number;
    members: number;
    map: MapSource;
    trainThreads?: number;
    frames: number;
  },
): Promise<BenchRun> {
  const train = trainIndices.map((i) => samples[i] as FolderSample);
  const test = testIndices.map((i) => samples[i] as FolderSample);
  const started = performance.now();
  const trained = await trainDefectModel(train, {
    seed: opts.seed,
    mode: opts.mode,
    epochs: opts.epochs,
    members: opts.members,
    map: opts.map,
    ...(opts.trainThreads !== undefined ? { threads: opts.trainThreads } : {}),
    onProgress: trainingProgressPrinter(),
  });
  const trainingSeconds = (performance.now() - started) / 1000;
  progressLine('');
  const evaluation = await evaluateModel(trained.onnx, test, {
    onProgress: (done, total) => progressLine(`scoring ${done}/${total}`),
  });
  progressLine('');
  const frame = test[0] ?? train[0];
  const inferenceMsPerFrame = {
    threads1: await timeInference(trained.onnx, frame?.image, 1, opts.frames),
    threads2: await timeInference(trained.onnx, frame?.image, 2, opts.frames),
  };
  return {
    seed: opts.seed,
    trainImages: train.length,
    testImages: test.length,
    auroc: evaluation.auroc,
    ap: evaluation.ap,
    pixelAuroc: evaluation.pixelAuroc,
    map:
      typeof trained.contract.training?.['map'] === 'string' ? trained.contract.training.map : null,
    f1: evaluation.f1,
    perClass: evaluation.perClass,
    trainingSeconds: round(trainingSeconds),
    inferenceMsPerFrame,
    modelBytes: trained.onnx.byteLength,
  };
}

/** Mean ONNX Runtime time per frame of an already preprocessed input at model size, after a warm-up. */
async function timeInference(
  onnx: Uint8Array,
  image: Uint8Array | undefined,
  threads: number,
  frames: number,
): Promise<number> {
  const model = await OnnxModel.load(onnx, { intraOpNumThreads: threads });
  try {
    const spec = model.contract.inputSpec;
    const input =
      image === undefined
        ? new Float32Array(spec.width * spec.height * spec.channels)
        : rawToTensor(await decodeImagePixels(image, spec), spec);
    for (let i = 0; i < 20; i++) await model.run(input);
    const n = Math.max(1, frames);
    const started = performance.now();
    for (let i = 0; i < n; i++) await model.run(input);
    return round((performance.now() - started) / n);
  } finally {
    await model.close();
  }
}

function fmt(value: number | null): string {
  return value === null ? '-' : value.toFixed(3);
}

function round(value: number): number {
  return Number(value.toFixed(4));
}

function round2(value: number): number {
  return Number(value.toFixed(2));
}
