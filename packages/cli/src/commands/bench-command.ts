import { Command, InvalidArgumentError, Option } from 'commander';
import {
  evaluateModel,
  holdoutSplit,
  trainDefectModel,
  type FolderSample,
  type TrainingMode,
} from '@linesight/model';
import { OnnxModel, decodeImagePixels, rawToTensor } from '@linesight/vision';
import { progressLine } from '../progress.ts';
import { benchDriftCommand } from '../bench/drift-bench.ts';
import { benchAgentCommand } from './bench-agent.ts';
import { benchIngestCommand } from './bench-ingest.ts';
import { benchPredictCommand } from './bench-predict.ts';
import { benchRolloutCommand } from './bench-rollout.ts';
import { benchStartupCommand } from './bench-startup.ts';
import { readDatasetVerbose, readMasks, trainingProgressPrinter } from './model-command.ts';

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected a whole number of at least 0');
  return n;
}

/** `linesight bench`: benchmarks; each subcommand prints one JSON object on stdout. */
export function benchCommand(): Command {
  const bench = new Command('bench').description('benchmarks that print one JSON object on stdout');
  bench.addCommand(modelBenchCommand());
  bench.addCommand(benchAgentCommand());
  bench.addCommand(benchPredictCommand());
  bench.addCommand(benchRolloutCommand());
  bench.addCommand(benchIngestCommand());
  bench.addCommand(benchDriftCommand());
  bench.addCommand(benchStartupCommand());
  return bench;
}

function modelBenchCommand(): Command {
  return new Command('model')
    .description(
      'train on part of a labelled folder, evaluate on the held-out rest, time inference',
    )
    .requiredOption('--data <dir>', 'dataset folder, laid out as for `model train`')
    .option('--good <class>', 'name of the defect-free class', 'good')
    .addOption(
      new Option('--mode <mode>', 'training mode')
        .choices(['supervised', 'anomaly', 'auto'])
        .default('auto'),
    )
    .option('--seed <n>', 'seed of the held-out split and of training', parseCount, 1)
    .option(
      '--repeats <n>',
      'repeat with seeds seed..seed+n-1 and report mean and spread',
      parseCount,
      1,
    )
    .option('--test-share <x>', 'share of each class held out for testing', Number, 0.25)
    .option('--epochs <n>', 'training epochs of the cell classifier', parseCount, 30)
    .option('--members <n>', 'cell classifiers trained and averaged in one model', parseCount, 1)
    .option(
      '--train-threads <n>',
      "threads computing the classifier's gradients (default 2; the model's bytes do not depend on it)",
      parseCount,
    )
    .option('--frames <n>', 'frames timed per thread count', parseCount, 200)
    .option('--json', 'print one line of JSON (the default indents it)')
    .action(
      async (opts: {
        data: string;
        good: string;
        mode: TrainingMode;
        seed: number;
        repeats: number;
        testShare: number;
        epochs: number;
        members: number;
        trainThreads?: number;
        frames: number;
        json?: boolean;
      }) => {
        if (!(opts.testShare > 0 && opts.testShare < 1))
          throw new InvalidArgumentError('--test-share must be in (0, 1)');
        const dataset = await readDatasetVerbose(opts.data, opts.good);
        const runs = [];
        for (let r = 0; r < Math.max(1, opts.repeats); r++) {
          const seed = opts.seed + r;
          runs.push(await benchOnce(dataset.samples, { ...opts, seed }));
        }
        const first = runs[0] as BenchRun;
        const summary: Record<string, unknown> = {
          ...first,
          dataset: opts.data,
          mode: opts.mode,
          members: opts.members,
          trainThreads: opts.trainThreads ?? 2,
        };
        if (runs.length > 1) {
          summary.repeats = runs.length;
          summary.runs = runs;
          for (const key of ['auroc', 'pixelAuroc', 'trainingSeconds'] as const) {
            const values = runs.map((run) => run[key]).filter((v): v is number => v !== null);
            summary[key] = round(mean(values));
            summary[`${key}Std`] = round(std(values));
            summary[`${key}Min`] = round(Math.min(...values));
          }
        }
        console.log(
          opts.json === true ? JSON.stringify(summary) : JSON.stringify(summary, null, 2),
        );
      },
    );
}

interface BenchRun {
  seed: number;
  trainImages: number;
  testImages: number;
  auroc: number | null;
  ap: number | null;
  pixelAuroc: number | null;
  f1: number | null;
  perClass: Record<string, number | null>;
  trainingSeconds: number;
  inferenceMsPerFrame: { threads1: number; threads2: number };
  modelBytes: number;
}

async function benchOnce(
  samples: FolderSample[],
  opts: {
    seed: number;
    mode: TrainingMode;
    testShare: number;
    epochs: number;
    members: number;
    trainThreads?: number;
    frames: number;
  },
): Promise<BenchRun> {
  // The held-out test split is disjoint from everything the trainer sees (it splits validation off its own part).
  const split = holdoutSplit(samples, { seed: opts.seed, share: opts.testShare });
  const train = split.train.map((i) => samples[i] as FolderSample);
  const test = split.heldOut.map((i) => samples[i] as FolderSample);
  const started = performance.now();
  const trained = await trainDefectModel(train, {
    seed: opts.seed,
    mode: opts.mode,
    epochs: opts.epochs,
    members: opts.members,
    ...(opts.trainThreads !== undefined ? { threads: opts.trainThreads } : {}),
    onProgress: trainingProgressPrinter(),
  });
  const trainingSeconds = (performance.now() - started) / 1000;
  progressLine('');
  const evaluation = await evaluateModel(trained.onnx, test, {
    masks: await readMasks(test),
    onProgress: (done, total) => progressLine(`scoring ${done}/${total}`),
  });
  progressLine('');
  const frame = test[0] ?? train[0];
  const inferenceMsPerFrame = {
    threads1: await timeInference(trained.onnx, frame?.image, 1, opts.frames),
    threads2: await timeInference(trained.onnx, frame?.image, 2, opts.frames),
  };
  const run: BenchRun = {
    seed: opts.seed,
    trainImages: train.length,
    testImages: test.length,
    auroc: evaluation.auroc,
    ap: evaluation.ap,
    pixelAuroc: evaluation.pixelAuroc,
    f1: evaluation.f1,
    perClass: evaluation.perClass,
    trainingSeconds: round(trainingSeconds),
    inferenceMsPerFrame,
    modelBytes: trained.onnx.byteLength,
  };
  console.error(`bench seed ${opts.seed}: ${JSON.stringify(run)}`);
  return run;
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

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

function std(values: readonly number[]): number {
  const m = mean(values);
  return Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
}

function round(value: number): number {
  return Number(value.toFixed(4));
}
