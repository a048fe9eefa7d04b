import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { LinesightError, type InputSpec } from '@linesight/protocol';
import { decodeImagePixels, rawToTensor } from '@linesight/vision';
import { FeaturePool } from './feature-pool.ts';
import { mapConcurrent } from './map-concurrent.ts';
import { pyramidFeatures, pyramidKernels, type PyramidGeometry } from './pyramid-features.ts';
import { createRandom } from './random.ts';
import { SYNTHETIC_ANOMALY_KINDS, paintSyntheticAnomaly } from './synthetic-anomalies.ts';
import type { TrainingProgress } from './training-result.ts';
import type { TrainingSample } from './training-sample.ts';

const DECODE_CONCURRENCY = 4;
/** The two finest levels also get max-pooled energies: thin cracks vanish in an 8x8 average. */
export const MAX_POOL_LEVELS = 2;

/** A training image's cell features. */
export interface TrainFeatures {
  features: Float32Array;
  defect: boolean;
  synthetic: boolean;
}

/**
 * The pyramid the trainer extracts features with. Anomaly mode scores base
 * features with a per-position Gaussian (see padim.ts), which makes its pooled
 * features relative itself; the classifier gets relative channels.
 */
export function trainingGeometry(
  size: number,
  levels: number,
  mode: 'supervised' | 'anomaly',
): PyramidGeometry {
  return {
    size,
    levels,
    kernels: pyramidKernels(),
    maxPoolLevels: MAX_POOL_LEVELS,
    ...(mode === 'supervised' ? { relative: true } : {}),
  };
}

/** The features of a training run, with the decoded tensors they came from. */
export interface TrainingFeatureSet {
  /** Input tensors of every decoded sample, by sample index (training, then validation order). */
  tensors: Map<number, Float32Array>;
  /** Real training images first (good, then defect), then the synthetic defects. */
  train: TrainFeatures[];
  /** In the order of the validation indices. */
  validation: Float32Array[];
  syntheticCount: number;
}

/**
 * Decodes the samples a training run needs, paints `syntheticCount` synthetic
 * defects on good training images (in the canonical split order, from the
 * seed) and extracts the pyramid features of them all, reporting progress.
 */
export async function trainingFeatures(o: {
  samples: readonly TrainingSample[];
  trainGood: readonly number[];
  trainDefect: readonly number[];
  validation: readonly number[];
  inputSpec: InputSpec;
  geometry: PyramidGeometry;
  seed: number;
  syntheticCount: number;
  /** Threads extracting features (worker threads when above 1; default 1, this thread). */
  threads?: number;
  report: (progress: TrainingProgress) => void;
}): Promise<TrainingFeatureSet> {
  const { samples, trainGood, inputSpec, geometry, report } = o;
  const isDefect = (i: number): boolean => samples[i]?.label === 'defect';
  const needed = [...trainGood, ...o.trainDefect, ...o.validation];
  let decoded = 0;
  const pixelList = await mapConcurrent(needed, DECODE_CONCURRENCY, async (index) => {
    const pixels = await decodeSample(samples, index, inputSpec);
    report({ step: 'decode', done: ++decoded, total: needed.length });
    return pixels;
  });
  const tensors = new Map(
    needed.map((index, k) => [index, rawToTensor(pixelList[k] as Uint8Array, inputSpec)]),
  );

  const random = createRandom(o.seed ^ 0x5eed);
  const tensorOf = (i: number): Float32Array => tensors.get(i) as Float32Array;
  // Each job yields its input tensor when it starts. Jobs start in this order (mapConcurrent
  // starts them in order), so the synthetic defects are painted in the seed's order whatever
  // the thread count.
  const realTrain = [...trainGood, ...o.trainDefect];
  const jobs: (() => Float32Array)[] = [
    ...realTrain.map((i) => () => tensorOf(i)),
    ...Array.from({ length: o.syntheticCount }, (_, n) => () => {
      const base = tensorOf(trainGood[Math.floor(random() * trainGood.length)] as number);
      const donor = tensorOf(trainGood[Math.floor(random() * trainGood.length)] as number);
      const kind = SYNTHETIC_ANOMALY_KINDS[
        n % SYNTHETIC_ANOMALY_KINDS.length
      ] as (typeof SYNTHETIC_ANOMALY_KINDS)[number];
      return paintSyntheticAnomaly(base, donor, geometry.size, kind, random).image;
    }),
    ...o.validation.map((i) => () => tensorOf(i)),
  ];
  const threads = o.threads ?? 1;
  const pool = threads > 1 ? FeaturePool.start(geometry, threads) : undefined;
  let featured = 0;
  const featuresOf = async (input: Float32Array): Promise<Float32Array> => {
    let out: Float32Array;
    if (pool !== undefined) out = await pool.features(input);
    else {
      await yieldToEventLoop();
      out = pyramidFeatures(input, geometry).data;
    }
    report({ step: 'features', done: ++featured, total: jobs.length });
    return out;
  };
  let all: Float32Array[];
  try {
    // Two images in flight per thread keep every worker busy while the next is posted.
    all = await mapConcurrent(jobs, pool === undefined ? 1 : 2 * threads, (job) =>
      featuresOf(job()),
    );
  } finally {
    await pool?.close();
  }
  const train: TrainFeatures[] = all
    .slice(0, realTrain.length + o.syntheticCount)
    .map((features, k) => ({
      features,
      defect: k < realTrain.length ? isDefect(realTrain[k] as number) : true,
      synthetic: k >= realTrain.length,
    }));
  const validation = all.slice(realTrain.length + o.syntheticCount);
  return { tensors, train, validation, syntheticCount: o.syntheticCount };
}

async function decodeSample(
  samples: readonly TrainingSample[],
  index: number,
  spec: InputSpec,
): Promise<Uint8Array> {
  const sample = samples[index] as TrainingSample;
  try {
    return await decodeImagePixels(sample.image, spec);
  } catch (cause) {
    throw new LinesightError(
      'ERR_DATASET',
      `sample ${index} (${sample.label}/${sample.className}) is not a readable image`,
      {
        cause,
        details: { index, label: sample.label, className: sample.className },
      },
    );
  }
}
