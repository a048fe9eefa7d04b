import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { readImageFolder } from './image-folder-dataset.ts';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('readImageFolder', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'linesight-folder-'));
    const grey = (value: number) =>
      sharp({
        create: {
          width: 16,
          height: 16,
          channels: 3,
          background: { r: value, g: value, b: value },
        },
      });
    await mkdir(join(root, 'MT_Free', 'Imgs'), { recursive: true });
    await mkdir(join(root, 'crack'), { recursive: true });
    await writeFile(join(root, 'MT_Free', 'Imgs', 'a.jpg'), await grey(100).jpeg().toBuffer());
    await writeFile(join(root, 'MT_Free', 'Imgs', 'a.png'), await grey(0).png().toBuffer());
    const jpeg = await grey(120).jpeg().toBuffer();
    // A truncated JPEG: its header reads, its pixels do not.
    await writeFile(
      join(root, 'MT_Free', 'Imgs', 'truncated.jpg'),
      jpeg.subarray(0, Math.floor(jpeg.length / 2)),
    );
    await writeFile(join(root, 'MT_Free', 'Imgs', 'garbage.jpg'), Buffer.from('not an image'));
    await writeFile(join(root, 'crack', 'b.jpg'), await grey(50).jpeg().toBuffer());
    await writeFile(join(root, 'crack', 'b.png'), await grey(255).png().toBuffer());
    await writeFile(join(root, 'crack', 'notes.txt'), 'ignored');
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('names classes by folder, pairs masks, and lists unreadable files instead of failing', async () => {
    const dataset = await readImageFolder(root, { goodClass: 'MT_Free' });
    expect(dataset.classes).toEqual({ MT_Free: 1, crack: 1 });
    expect(dataset.samples.map((s) => [s.className, s.label, s.maskPath !== undefined])).toEqual([
      ['MT_Free', 'good', true],
      ['crack', 'defect', true],
    ]);
    expect(dataset.skipped.map((s) => s.path.split('/').at(-1)).sort()).toEqual([
      'garbage.jpg',
      'truncated.jpg',
    ]);
  });

  it('fails clearly on an empty or missing folder', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'linesight-empty-'));
    try {
      const err = await rejection(readImageFolder(empty));
      expect(isLinesightError(err, 'ERR_DATASET')).toBe(true);
      expect((err as Error).message).toMatch(/no readable images/);
      expect(
        isLinesightError(await rejection(readImageFolder(join(empty, 'nope'))), 'ERR_DATASET'),
      ).toBe(true);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
