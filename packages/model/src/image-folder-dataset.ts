import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join, relative, sep } from 'node:path';
import sharp from 'sharp';
import { LinesightError } from '@linesight/protocol';
import { separateMasks } from '@linesight/vision';
import type { TrainingSample } from './training-sample.ts';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff']);
const TRANSPARENT_FOLDERS = new Set(['imgs', 'images']);

/** A sample read from a folder, with where it came from and its mask if any. */
export interface FolderSample extends TrainingSample {
  path: string;
  maskPath?: string;
}

/** A dataset read from a folder. */
export interface ImageFolderDataset {
  samples: FolderSample[];
  /** Files that looked like images but could not be read, with the reason. */
  skipped: { path: string; reason: string }[];
  /** Images per class. */
  classes: Record<string, number>;
  goodClass: string;
}

/**
 * Reads a labelled image folder: every folder holding images is named by its
 * class (the nearest folder name that is not `Imgs`/`images`); `goodClass`
 * is defect-free, all others are defects. A `.png` beside a `.jpg`/`.jpeg`/`.bmp`
 * of the same stem is that image's mask (read into `mask`). Unreadable files are skipped and listed.
 */
export async function readImageFolder(
  root: string,
  options: { goodClass?: string; onProgress?: (done: number, total: number) => void } = {},
): Promise<ImageFolderDataset> {
  const goodClass = options.goodClass ?? 'good';
  let files: string[];
  try {
    files = await listFiles(root);
  } catch (cause) {
    throw new LinesightError('ERR_DATASET', `cannot read dataset folder ${root}`, { cause });
  }
  const images = files.filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()));
  // The same rule the agent's folder camera and `predict` apply.
  const { images: candidates, masks } = separateMasks(images);
  candidates.sort();
  const samples: FolderSample[] = [];
  const skipped: { path: string; reason: string }[] = [];
  const classes: Record<string, number> = {};
  for (const [i, path] of candidates.entries()) {
    options.onProgress?.(i + 1, candidates.length);
    const className = classOf(root, path);
    if (className === undefined) {
      skipped.push({ path, reason: 'image is not inside a class folder' });
      continue;
    }
    try {
      const image = await readFile(path);
      // A full decode, not just the header: a truncated file must be skipped here, not fail training later.
      const { info } = await sharp(image, { failOn: 'error' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (!info.width || !info.height) throw new Error('no image dimensions');
      const maskPath = masks.get(path);
      // A mask that cannot be read costs only its pixel labels, not the image.
      const mask = maskPath
        ? await readFile(maskPath).catch((err: Error) => {
            skipped.push({ path: maskPath, reason: `mask not read (${err.message})` });
            return undefined;
          })
        : undefined;
      samples.push({
        path,
        image,
        className,
        label: className === goodClass ? 'good' : 'defect',
        ...(maskPath ? { maskPath } : {}),
        ...(mask !== undefined ? { mask } : {}),
      });
      classes[className] = (classes[className] ?? 0) + 1;
    } catch (err) {
      skipped.push({ path, reason: (err as Error).message });
    }
  }
  if (samples.length === 0) {
    throw new LinesightError(
      'ERR_DATASET',
      `no readable images under ${root}: put images in one folder per class, e.g. ${join(root, goodClass)}/ and ${join(root, 'scratch')}/`,
    );
  }
  return { samples, skipped, classes, goodClass };
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

function classOf(root: string, path: string): string | undefined {
  const folders = relative(root, path).split(sep).slice(0, -1);
  for (let i = folders.length - 1; i >= 0; i--) {
    const name = folders[i] as string;
    if (!TRANSPARENT_FOLDERS.has(name.toLowerCase())) return name;
  }
  return folders.length === 0 ? undefined : basename(root);
}
