import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Reads a random HMAC key the cloud keeps in its data dir as hex (mode 0600),
 * creating it when absent, so what it signs stays valid across restarts.
 */
export async function readOrCreateSecretKey(path: string, bytes = 32): Promise<Buffer> {
  try {
    return Buffer.from((await readFile(path, 'utf8')).trim(), 'hex');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true });
  const key = randomBytes(bytes);
  // 'wx' so two processes creating it at once cannot overwrite each other's key.
  try {
    await writeFile(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readOrCreateSecretKey(path, bytes);
    throw err;
  }
  await chmod(path, 0o600);
  return key;
}
