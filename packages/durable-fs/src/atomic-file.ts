import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** How writeFileAtomic writes. */
export interface WriteFileAtomicOptions {
  /** Mode of the file (default 0o600: keys, tokens and device state are private). */
  mode?: number;
  /**
   * Where the temp file goes (default beside the target, with a random suffix);
   * it must be on the target's filesystem, so that the rename is atomic.
   */
  tempPath?: string;
}

/**
 * Writes a file so that readers, and a restart after kill -9 or power loss,
 * see the old or the new content, never a mix: temp file, fsync, rename,
 * fsync of the folder. A failed write removes its temp file.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  await mkdir(dirname(path), { recursive: true });
  const tmp = options.tempPath ?? `${path}.tmp-${randomBytes(6).toString('hex')}`;
  // 'wx': a temp name already in use is a bug, not something to overwrite (or remove).
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      // The umask may have narrowed the mode given at creation.
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await moveIntoPlace(tmp, path);
  } catch (err) {
    // A failed write (a full disk) must not leave its temp file taking space.
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Renames a complete, fsynced file into place and fsyncs the folder, so the
 * rename survives power loss. Creates the folder when missing.
 */
export async function moveIntoPlace(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await rename(from, to);
  await syncDir(dirname(to));
}

/** fsyncs a directory so a rename or a new file in it survives power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
