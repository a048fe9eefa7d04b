import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LinesightError } from '@linesight/protocol';
import { DEFAULT_JPEG_QUALITY, encodeGrey, type ImageFormat } from './encode.ts';
import { frameDefect, frameSeed } from './frame-plan.ts';
import type { DefectKind } from './render/defects.ts';
import { MAX_SURFACE_SIDE_PX, MIN_SURFACE_SIDE_PX, renderSurface } from './render/surface.ts';

/** Class of a synthetic sample: `good` or the kind of its defect. */
export type SyntheticClassName = 'good' | Exclude<DefectKind, 'none'>;

/** Every synthetic sample class, `good` first. */
export const SYNTHETIC_CLASS_NAMES: readonly SyntheticClassName[] = [
  'good',
  'scratch',
  'spot',
  'crack',
];

/** One labelled synthetic image with its defect mask. */
export interface SyntheticSample {
  /** File stem, unique within a seed, e.g. `syn-s1-00042`. */
  name: string;
  className: SyntheticClassName;
  label: 'good' | 'defect';
  /** The encoded image (JPEG or PNG as asked). */
  image: Buffer;
  /** PNG of the defect mask: 255 on defect pixels, 0 elsewhere (all 0 for good). */
  mask: Buffer;
}

/** What to generate; sample `i` equals frame `i` of a SyntheticCamera with the same options. */
export interface SyntheticSamplesOptions {
  seed: number;
  count: number;
  /** Share of samples with a defect, 0..1. */
  defectRate: number;
  /** Image width in pixels (default 256). */
  width?: number;
  /** Image height in pixels (default 256). */
  height?: number;
  /** Encoding of `image` (default 'jpeg'). */
  format?: ImageFormat;
  /** JPEG quality 1..100 (default 90). */
  jpegQuality?: number;
}

/** What to write: as for samples, but images are always JPEG so masks can sit beside them. */
export type SyntheticDatasetOptions = Omit<SyntheticSamplesOptions, 'format'>;

/** Number of samples written per class. */
export type SyntheticDatasetCounts = Record<SyntheticClassName, number>;

// Samples rendered before waiting for their encodes; renders run on the main
// thread, encodes on libuv's pool, so a small batch overlaps the two.
const BATCH_SIZE = 8;

interface Plan {
  seed: number;
  count: number;
  defectRate: number;
  width: number;
  height: number;
  format: ImageFormat;
  jpegQuality: number;
  digits: number;
}

function plan(options: SyntheticSamplesOptions): Plan {
  const resolved = {
    seed: options.seed,
    count: options.count,
    defectRate: options.defectRate,
    width: options.width ?? 256,
    height: options.height ?? 256,
    format: options.format ?? 'jpeg',
    jpegQuality: options.jpegQuality ?? DEFAULT_JPEG_QUALITY,
  };
  const problems: string[] = [];
  if (!Number.isSafeInteger(resolved.seed)) problems.push('seed must be an integer');
  if (!(Number.isSafeInteger(resolved.count) && resolved.count >= 0)) {
    problems.push('count must be a non-negative integer');
  }
  if (!(resolved.defectRate >= 0 && resolved.defectRate <= 1)) {
    problems.push('defectRate must be in [0, 1]');
  }
  for (const key of ['width', 'height'] as const) {
    const side = resolved[key];
    if (!Number.isInteger(side) || side < MIN_SURFACE_SIDE_PX || side > MAX_SURFACE_SIDE_PX) {
      problems.push(
        `${key} must be an integer in [${MIN_SURFACE_SIDE_PX}, ${MAX_SURFACE_SIDE_PX}]`,
      );
    }
  }
  if (resolved.format !== 'jpeg' && resolved.format !== 'png') {
    problems.push(`format must be 'jpeg' or 'png'`);
  }
  const q = resolved.jpegQuality;
  if (!Number.isInteger(q) || q < 1 || q > 100)
    problems.push('jpegQuality must be an integer in [1, 100]');
  if (problems.length > 0) {
    throw new LinesightError(
      'ERR_DATASET',
      `invalid synthetic dataset options: ${problems.join('; ')}`,
      {
        details: { problems },
      },
    );
  }
  return { ...resolved, digits: Math.max(5, String(Math.max(0, resolved.count - 1)).length) };
}

function className(defect: DefectKind): SyntheticClassName {
  return defect === 'none' ? 'good' : defect;
}

async function sampleAt(p: Plan, index: number): Promise<SyntheticSample> {
  const defect = frameDefect(p.seed, index, p.defectRate);
  const surface = renderSurface({
    seed: frameSeed(p.seed, index),
    width: p.width,
    height: p.height,
    defect,
  });
  const [image, mask] = await Promise.all([
    encodeGrey(surface.pixels, p.width, p.height, p.format, p.jpegQuality),
    encodeGrey(surface.mask, p.width, p.height, 'png'),
  ]);
  return {
    name: `syn-s${p.seed}-${String(index).padStart(p.digits, '0')}`,
    className: className(defect),
    label: defect === 'none' ? 'good' : 'defect',
    image,
    mask,
  };
}

// Yields samples in index order, a batch at a time, so writers need not hold
// the whole dataset in memory.
async function* sampleBatches(p: Plan): AsyncGenerator<SyntheticSample[]> {
  for (let start = 0; start < p.count; start += BATCH_SIZE) {
    const end = Math.min(p.count, start + BATCH_SIZE);
    const pending: Promise<SyntheticSample>[] = [];
    for (let i = start; i < end; i += 1) pending.push(sampleAt(p, i));
    yield await Promise.all(pending);
  }
}

/** Generates `count` labelled samples with masks; deterministic in its options (throws ERR_DATASET on bad options). */
export async function syntheticSamples(
  options: SyntheticSamplesOptions,
): Promise<SyntheticSample[]> {
  const samples: SyntheticSample[] = [];
  for await (const batch of sampleBatches(plan(options))) samples.push(...batch);
  return samples;
}

/**
 * Writes samples as `<dir>/<className>/<name>.jpg` with the mask beside it as
 * `<name>.png` (every sample, good ones too), overwriting files of the same
 * name; returns how many were written per class.
 */
export async function writeSyntheticDataset(
  dir: string,
  options: SyntheticDatasetOptions,
): Promise<SyntheticDatasetCounts> {
  const p = plan({ ...options, format: 'jpeg' });
  const counts: SyntheticDatasetCounts = { good: 0, scratch: 0, spot: 0, crack: 0 };
  const made = new Set<SyntheticClassName>();
  try {
    for await (const batch of sampleBatches(p)) {
      for (const sample of batch) {
        const classDir = join(dir, sample.className);
        if (!made.has(sample.className)) {
          await mkdir(classDir, { recursive: true });
          made.add(sample.className);
        }
        await Promise.all([
          writeFile(join(classDir, `${sample.name}.jpg`), sample.image),
          writeFile(join(classDir, `${sample.name}.png`), sample.mask),
        ]);
        counts[sample.className] += 1;
      }
    }
  } catch (cause) {
    throw new LinesightError('ERR_DATASET', `cannot write synthetic dataset to ${dir}`, {
      cause,
      details: { dir, written: { ...counts } },
    });
  }
  return counts;
}
