import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listImages } from './predict-command.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-predict-list-'));
  await mkdir(join(dir, 'MT_Crack'), { recursive: true });
  for (const name of ['MT_Crack/exp1.jpg', 'MT_Crack/exp1.png', 'MT_Crack/exp2.jpg', 'solo.png'])
    await writeFile(join(dir, name), 'x');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('predict input listing', () => {
  it('skips a .png beside a .jpg of the same stem (a mask), as the dataset reader does', async () => {
    const found = await listImages(dir, ['jpg', 'jpeg', 'png']);
    expect(found.map((p) => p.slice(dir.length + 1))).toEqual([
      'MT_Crack/exp1.jpg',
      'MT_Crack/exp2.jpg',
      'solo.png',
    ]);
  });
});
