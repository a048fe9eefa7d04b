import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Frame } from '@linesight/agent';
import { isLinesightError } from '@linesight/protocol';
import { frameDefect } from './frame-plan.ts';
import { SyntheticCamera } from './synthetic-camera.ts';
import {
  SYNTHETIC_CLASS_NAMES,
  syntheticSamples,
  writeSyntheticDataset,
  type SyntheticDatasetCounts,
} from './synthetic-dataset.ts';

async function greyPixels(image: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(image)
    .toColourspace('b-w')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('syntheticSamples', () => {
  const options = { seed: 21, count: 24, defectRate: 0.5, width: 64, height: 64 };

  it('is deterministic and labels each sample with its ground truth', async () => {
    const a = await syntheticSamples(options);
    const b = await syntheticSamples(options);
    expect(a).toHaveLength(24);
    expect(new Set(a.map((s) => s.name)).size).toBe(24);
    expect(a[3]?.name).toBe('syn-s21-00003');
    for (const [i, sample] of a.entries()) {
      const other = b[i];
      expect(other?.name).toBe(sample.name);
      expect(other?.image.equals(sample.image)).toBe(true);
      expect(other?.mask.equals(sample.mask)).toBe(true);
      const defect = frameDefect(21, i, 0.5);
      expect(sample.className).toBe(defect === 'none' ? 'good' : defect);
      expect(sample.label).toBe(defect === 'none' ? 'good' : 'defect');
    }
    expect(new Set(a.map((s) => s.className)).size).toBeGreaterThan(2);
  });

  it('encodes JPEG images and PNG masks that are empty exactly for good samples', async () => {
    for (const sample of await syntheticSamples(options)) {
      expect(await sharp(sample.image).metadata()).toMatchObject({
        format: 'jpeg',
        width: 64,
        height: 64,
      });
      expect(await sharp(sample.mask).metadata()).toMatchObject({ format: 'png', channels: 1 });
      const mask = await greyPixels(sample.mask);
      expect(mask).toMatchObject({ width: 64, height: 64 });
      const marked = mask.data.filter((v) => v !== 0);
      expect(marked.every((v) => v === 255)).toBe(true);
      if (sample.label === 'good') expect(marked.length).toBe(0);
      else expect(marked.length).toBeGreaterThan(10);
    }
  });

  it('matches the camera frame for frame', async () => {
    const samples = await syntheticSamples({ ...options, count: 3, format: 'png' });
    const camera = new SyntheticCamera({ ...options, fps: 100, format: 'png', maxFrames: 3 });
    const frames: Frame[] = [];
    const errors: unknown[] = [];
    await camera.start({ frame: (f) => frames.push(f), error: (err) => errors.push(err) });
    const deadline = Date.now() + 10_000;
    while (frames.length < 3 && errors.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await camera.close();
    expect(errors).toEqual([]);
    expect(frames.map((f) => f.image.equals(samples[f.seq]?.image ?? Buffer.alloc(0)))).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('rejects bad options with ERR_DATASET', async () => {
    await expect(syntheticSamples({ seed: 1, count: -1, defectRate: 1.5 })).rejects.toSatisfy(
      (err) =>
        isLinesightError(err, 'ERR_DATASET') &&
        /count/.test(err.message) &&
        /defectRate/.test(err.message),
    );
  });
});

describe('writeSyntheticDataset', () => {
  it('writes <class>/<name>.jpg with its mask as <class>/<name>.png and counts per class', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-synthetic-'));
    dirs.push(dir);
    const counts = await writeSyntheticDataset(dir, {
      seed: 8,
      count: 30,
      defectRate: 0.6,
      width: 48,
      height: 48,
    });

    const expected: SyntheticDatasetCounts = { good: 0, scratch: 0, spot: 0, crack: 0 };
    for (let i = 0; i < 30; i += 1) {
      const defect = frameDefect(8, i, 0.6);
      expected[defect === 'none' ? 'good' : defect] += 1;
    }
    expect(counts).toEqual(expected);

    const classDirs = (await readdir(dir)).sort();
    expect(classDirs).toEqual(SYNTHETIC_CLASS_NAMES.filter((c) => expected[c] > 0).sort());
    for (const className of classDirs) {
      const files = (await readdir(join(dir, className))).sort();
      const stems = files.filter((f) => f.endsWith('.jpg')).map((f) => f.slice(0, -4));
      expect(stems).toHaveLength(expected[className as keyof SyntheticDatasetCounts]);
      expect(files).toEqual(stems.flatMap((stem) => [`${stem}.jpg`, `${stem}.png`]).sort());
      for (const stem of stems) {
        expect(stem).toMatch(/^syn-s8-\d{5}$/);
        const image = await sharp(join(dir, className, `${stem}.jpg`)).metadata();
        expect(image).toMatchObject({ format: 'jpeg', width: 48, height: 48 });
        const mask = await sharp(join(dir, className, `${stem}.png`)).metadata();
        expect(mask).toMatchObject({ format: 'png', width: 48, height: 48 });
      }
    }
  });

  it('wraps file system failures in ERR_DATASET', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-synthetic-'));
    dirs.push(dir);
    // A class directory path that is a file cannot be created.
    for (const className of SYNTHETIC_CLASS_NAMES)
      await writeFile(join(dir, className), 'not a dir');
    await expect(
      writeSyntheticDataset(dir, { seed: 1, count: 2, defectRate: 0.5, width: 32, height: 32 }),
    ).rejects.toSatisfy((err) => isLinesightError(err, 'ERR_DATASET'));
  });
});
