import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';

/** Object storage for artifacts and images; local folder by default, S3 later. */
export interface BlobStore {
  /** Stores bytes under a key atomically (readers never see a partial object). */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Size of an object, or undefined when absent. */
  size(key: string): Promise<number | undefined>;
  /** A stream of an object's bytes, optionally a byte range [start, end] inclusive. */
  read(key: string, range?: { start: number; end: number }): Readable;
  /** Where a key lives on local disk, for tools and tests; undefined for remote stores. */
  localPath(key: string): string | undefined;
}

const KEY = /^[a-z0-9][a-z0-9_.@/-]*$/i;

/** A BlobStore in a local folder: temp file, fsync, rename. */
export class LocalBlobStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  localPath(key: string): string {
    if (!KEY.test(key) || key.split('/').includes('..')) {
      throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `invalid blob key ${JSON.stringify(key)}`);
    }
    const path = resolve(join(this.root, key));
    if (!path.startsWith(this.root + sep)) {
      throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `blob key escapes the store: ${key}`);
    }
    return path;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.localPath(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      return (await stat(this.localPath(key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.localPath(key), range);
  }
}
