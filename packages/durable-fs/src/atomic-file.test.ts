import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { moveIntoPlace, writeFileAtomic } from './atomic-file.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-durable-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the content whole, creates the folder, and leaves no temp file', async () => {
    const path = join(dir, 'nested', 'state.json');
    await writeFileAtomic(path, '{"v":1}');
    await writeFileAtomic(path, new TextEncoder().encode('{"v":2}'));
    expect(await readFile(path, 'utf8')).toBe('{"v":2}');
    expect(await readdir(join(dir, 'nested'))).toEqual(['state.json']);
  });

  it('writes mode 0600 by default whatever the umask, and the mode asked for', async () => {
    // A strict umask would narrow 0644 to 0600 at creation; the mode asked for must win.
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(join(dir, 'key'), 'secret');
      await writeFileAtomic(join(dir, 'public'), 'x', { mode: 0o644 });
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, 'key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'public'))).mode & 0o777).toBe(0o644);
  });

  it('removes its temp file and keeps the old content when the rename fails', async () => {
    // A folder where the file should go: the rename fails after the temp file was written.
    const path = join(dir, 'taken');
    await mkdir(join(path, 'inside'), { recursive: true });
    const tempPath = join(dir, 'tmp-1');
    await expect(writeFileAtomic(path, 'new', { tempPath })).rejects.toMatchObject({
      code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) as unknown,
    });
    expect((await readdir(dir)).sort()).toEqual(['taken']);
  });

  it('writes through the temp path it is given', async () => {
    await mkdir(join(dir, '.tmp'));
    const tempPath = join(dir, '.tmp', 'abc');
    await writeFileAtomic(join(dir, 'blob'), 'bytes', { tempPath });
    expect(await readFile(join(dir, 'blob'), 'utf8')).toBe('bytes');
    expect(await readdir(join(dir, '.tmp'))).toEqual([]);
  });

  it('refuses a temp path already in use instead of overwriting it', async () => {
    const tempPath = join(dir, 'busy');
    await writeFile(tempPath, 'someone else');
    await expect(writeFileAtomic(join(dir, 'x'), 'mine', { tempPath })).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(await readFile(tempPath, 'utf8')).toBe('someone else');
  });
});

describe('moveIntoPlace', () => {
  it('renames into a folder it creates', async () => {
    await writeFile(join(dir, 'part'), 'done');
    await moveIntoPlace(join(dir, 'part'), join(dir, 'a', 'b', 'final'));
    expect(await readFile(join(dir, 'a', 'b', 'final'), 'utf8')).toBe('done');
    expect(await readdir(dir)).toEqual(['a']);
  });
});
