import { mkdtemp, rm, writeFile, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mountTmpfs } from './tmpfs.ts';

const dir = await mkdtemp(join(tmpdir(), 'linesight-testkit-tmpfs-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('mountTmpfs', () => {
  it('mounts a disk of the given size that refuses a bigger write (root), or says it cannot', async () => {
    const disk = mountTmpfs(dir, 1024 * 1024);
    if (process.getuid?.() !== 0) {
      expect(disk).toBeUndefined();
      return;
    }
    expect(disk).toBeDefined();
    try {
      const fs = await statfs(dir);
      expect(fs.blocks * fs.bsize).toBe(1024 * 1024);
      await expect(writeFile(join(dir, 'big.bin'), Buffer.alloc(2 * 1024 * 1024))).rejects.toThrow(
        /ENOSPC/,
      );
    } finally {
      disk?.unmount();
      disk?.unmount();
    }
    expect((await statfs(dir)).blocks * (await statfs(dir)).bsize).not.toBe(1024 * 1024);
  });
});
