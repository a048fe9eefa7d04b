// Test helper: a small real filesystem to fill up. Not exported from the package.
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A folder on a small filesystem, or a plain temp folder when none can be mounted. */
export interface SmallDisk {
  dir: string;
  /** True when `dir` is a tmpfs of `sizeBytes` mounted for the test (root with `mount`). */
  real: boolean;
  close(): Promise<void>;
}

/**
 * Mounts a tmpfs of `sizeBytes` on a new temp folder when the test runs as
 * root and `mount` works; otherwise returns a plain temp folder and
 * `real: false`, and the test injects the full disk through a free-space probe.
 */
export async function smallDisk(sizeBytes: number): Promise<SmallDisk> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-small-disk-'));
  let real = false;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], {
        stdio: 'ignore',
      });
      real = true;
    } catch {
      real = false;
    }
  }
  return {
    dir,
    real,
    close: async () => {
      if (real) execFileSync('umount', [dir], { stdio: 'ignore' });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `path` until the filesystem is full (ENOSPC); returns the bytes written. */
export async function fillDisk(path: string): Promise<number> {
  const file = await open(path, 'a');
  const chunk = Buffer.alloc(16 * 1024, 7);
  let written = 0;
  try {
    for (;;) {
      const { bytesWritten } = await file.write(chunk);
      written += bytesWritten;
      if (bytesWritten < chunk.length) break;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await file.close();
  }
  return written;
}
