import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, opendir, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { moveIntoPlace, writeFileAtomic } from '@linesight/durable-fs';
import { LinesightError } from '@linesight/protocol';
import {
  blobMissing,
  checkBlobKey,
  isBlobKey,
  type BlobListEntry,
  type BlobListOptions,
  type BlobStat,
  type BlobStore,
  type UploadSpec,
  type UploadTarget,
  type VerifyResult,
} from './blob-store.ts';
import { streamToFile, type WrittenFile } from './stream-to-file.ts';
import type { UrlSigner } from './url-signer.ts';

/** Where the local store's signed routes live, relative to the cloud's public URL. */
export const LOCAL_UPLOAD_PATH = '/v1/blobs/upload';
export const LOCAL_DOWNLOAD_PATH = '/v1/blobs/download';

// Temp files live beside the keys (same filesystem, so rename is atomic) but in a folder no key can name.
const TMP_DIR = '.tmp';
// The name writeFileAtomic gives a temp file beside its target when it is not told another.
const PARTIAL = /\.tmp-[0-9a-f]+$/;

/** Options of the local store. */
export interface LocalBlobStoreOptions {
  root: string;
  /** Signs upload and download URLs; without it createUploadUrl/createDownloadUrl throw. */
  signer?: UrlSigner;
  /** The cloud's public base URL (`http://host:port`), read when a URL is made. */
  publicUrl?: () => string;
  now?: () => number;
}

/** A signed upload as it arrives at the cloud's PUT route. */
export interface IncomingUpload {
  query: Record<string, string | undefined>;
  contentType: string | undefined;
  contentLength: number | undefined;
  body: Readable;
}

/** A BlobStore in a local folder: temp file, fsync, rename. */
export class LocalBlobStore implements BlobStore {
  readonly kind = 'local';
  readonly root: string;
  readonly #signer: UrlSigner | undefined;
  readonly #publicUrl: (() => string) | undefined;
  readonly #now: () => number;

  constructor(options: LocalBlobStoreOptions | string) {
    const o = typeof options === 'string' ? { root: options } : options;
    this.root = resolve(o.root);
    this.#signer = o.signer;
    this.#publicUrl = o.publicUrl;
    this.#now = o.now ?? Date.now;
  }

  /** Removes temp files a crash left behind; call once at start. */
  async start(): Promise<void> {
    await rm(join(this.root, TMP_DIR), { recursive: true, force: true });
    await mkdir(join(this.root, TMP_DIR), { recursive: true });
  }

  localPath(key: string): string {
    checkBlobKey(key);
    const path = resolve(join(this.root, key));
    if (!path.startsWith(this.root + sep)) {
      throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `blob key escapes the store: ${key}`);
    }
    return path;
  }

  /** A fresh temp path on the store's filesystem, for callers that stream into the store. */
  async tempPath(): Promise<string> {
    const dir = join(this.root, TMP_DIR);
    await mkdir(dir, { recursive: true });
    return join(dir, randomBytes(12).toString('hex'));
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.localPath(key);
    // The temp file goes in the store's temp folder, which start() clears of a crash's leftovers.
    await writeFileAtomic(path, bytes, { tempPath: await this.tempPath() });
  }

  async putFile(key: string, file: string): Promise<void> {
    const path = this.localPath(key);
    try {
      await moveIntoPlace(file, path);
    } catch (err) {
      // A file on another filesystem cannot be renamed: copy it through a temp file instead.
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') {
        await rm(file, { force: true });
        throw err;
      }
      const tmp = await this.tempPath();
      try {
        await streamToFile(createReadStream(file), tmp, Number.MAX_SAFE_INTEGER);
        await moveIntoPlace(tmp, path);
      } finally {
        await rm(tmp, { force: true });
        await rm(file, { force: true });
      }
    }
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    try {
      const s = await stat(this.localPath(key));
      return s.isFile() ? { bytes: s.size } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const path = this.localPath(key);
    // Opened before returning, so a missing object is an error here, not on the stream.
    const handle = await open(path, 'r').catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw blobMissing(key, err);
      throw err;
    });
    return handle.createReadStream(range === undefined ? {} : range);
  }

  async verify(key: string, expected: { bytes: number; sha256: string }): Promise<VerifyResult> {
    const s = await this.stat(key);
    if (s === undefined) return 'missing';
    if (s.bytes !== expected.bytes) return 'mismatch';
    const hash = createHash('sha256');
    for await (const chunk of await this.read(key)) hash.update(chunk as Buffer);
    return hash.digest('hex') === expected.sha256 ? 'ok' : 'mismatch';
  }

  /**
   * Walks the folders under the prefix with opendir (a few entries in memory at
   * a time, however large a folder); dot-led names (the temp folder) and
   * partial files are skipped.
   */
  async *list(prefix: string, options: BlobListOptions = {}): AsyncIterable<BlobListEntry> {
    // The deepest folder the prefix names in full; the rest of the prefix filters names in it.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    if (base !== '' && !isBlobKey(base)) return;
    const bufferSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 4096);
    yield* this.#walk(base, prefix, bufferSize);
  }

  async *#walk(folder: string, prefix: string, bufferSize: number): AsyncIterable<BlobListEntry> {
    let dir;
    try {
      dir = await opendir(folder === '' ? this.root : join(this.root, folder), { bufferSize });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    // The iterator closes the folder handle when the loop ends, also on break or throw.
    for await (const entry of dir) {
      if (entry.name.startsWith('.') || PARTIAL.test(entry.name)) continue;
      const key = folder === '' ? entry.name : `${folder}/${entry.name}`;
      if (!isBlobKey(key)) continue;
      if (entry.isDirectory()) {
        // Only folders that can hold keys under the prefix.
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`))
          yield* this.#walk(key, prefix, bufferSize);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        try {
          const s = await stat(join(this.root, key));
          yield { key, bytes: s.size, modifiedAt: s.mtime };
        } catch (err) {
          // Deleted since the folder was read.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.localPath(key), { force: true });
  }

  async createUploadUrl(spec: UploadSpec): Promise<UploadTarget> {
    checkBlobKey(spec.key);
    const { signer, base } = this.#signing();
    const expiresAtSec = Math.floor(this.#now() / 1000) + spec.ttlSec;
    const grant = {
      method: 'PUT' as const,
      key: spec.key,
      bytes: spec.bytes,
      sha256: spec.sha256,
      contentType: spec.contentType,
      expiresAtSec,
    };
    const query = new URLSearchParams({
      key: spec.key,
      bytes: String(spec.bytes),
      sha256: spec.sha256,
      type: spec.contentType,
      exp: String(expiresAtSec),
      sig: signer.sign(grant),
    });
    return {
      url: `${base}${LOCAL_UPLOAD_PATH}?${query.toString()}`,
      method: 'PUT',
      headers: { 'content-type': spec.contentType },
      expiresAt: new Date(expiresAtSec * 1000).toISOString(),
    };
  }

  async createDownloadUrl(key: string, ttlSec: number): Promise<string> {
    checkBlobKey(key);
    const { signer, base } = this.#signing();
    const expiresAtSec = Math.floor(this.#now() / 1000) + ttlSec;
    const query = new URLSearchParams({
      key,
      exp: String(expiresAtSec),
      sig: signer.sign({ method: 'GET', key, expiresAtSec }),
    });
    return `${base}${LOCAL_DOWNLOAD_PATH}?${query.toString()}`;
  }

  /**
   * Receives a PUT to a URL from createUploadUrl: checks signature, expiry,
   * content type and declared length before reading, then streams the body to
   * a temp file and moves it into place only when size and sha256 match.
   */
  async acceptUpload(upload: IncomingUpload): Promise<WrittenFile & { key: string }> {
    const q = upload.query;
    const { signer } = this.#signing();
    const key = q.key ?? '';
    const bytes = Number(q.bytes);
    const expiresAtSec = Number(q.exp);
    const grant = {
      method: 'PUT' as const,
      key,
      bytes,
      sha256: q.sha256 ?? '',
      contentType: q.type ?? '',
      expiresAtSec,
    };
    if (
      !Number.isSafeInteger(bytes) ||
      bytes < 0 ||
      !Number.isSafeInteger(expiresAtSec) ||
      !signer.check(grant, q.sig ?? '')
    ) {
      throw new LinesightError(
        'ERR_CLOUD_FORBIDDEN',
        'upload URL signature does not match: the URL was altered or not issued by this cloud',
      );
    }
    if (Math.floor(this.#now() / 1000) >= expiresAtSec) {
      throw new LinesightError(
        'ERR_CLOUD_UPLOAD_EXPIRED',
        `upload URL expired at ${new Date(expiresAtSec * 1000).toISOString()}: request a new one`,
      );
    }
    const contentType = (upload.contentType ?? '').split(';', 1)[0]?.trim().toLowerCase();
    if (contentType !== grant.contentType) {
      throw new LinesightError(
        'ERR_CLOUD_UPLOAD_MISMATCH',
        `content-type ${JSON.stringify(upload.contentType ?? '')} differs from the declared ${grant.contentType}`,
      );
    }
    if (upload.contentLength !== undefined && upload.contentLength !== bytes) {
      throw new LinesightError(
        'ERR_CLOUD_UPLOAD_MISMATCH',
        `body is ${upload.contentLength} bytes but ${bytes} were declared`,
      );
    }
    const path = this.localPath(key);
    const tmp = await this.tempPath();
    const written = await streamToFile(
      upload.body,
      tmp,
      bytes,
      () =>
        new LinesightError(
          'ERR_CLOUD_UPLOAD_MISMATCH',
          `body is larger than the ${bytes} bytes declared`,
        ),
    ).catch((err: unknown) => {
      // A client that stops mid-body is a bad request; a file-system error (ENOSPC) is ours.
      if (err instanceof LinesightError || typeof (err as { errno?: unknown }).errno === 'number')
        throw err;
      throw new LinesightError('ERR_CLOUD_BAD_REQUEST', 'the upload body ended early', {
        cause: err,
      });
    });
    try {
      if (written.bytes !== bytes || written.sha256 !== grant.sha256) {
        throw new LinesightError(
          'ERR_CLOUD_UPLOAD_MISMATCH',
          written.bytes !== bytes
            ? `body is ${written.bytes} bytes but ${bytes} were declared`
            : 'body sha256 differs from the declared sha256',
        );
      }
      await moveIntoPlace(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
    return { key, ...written };
  }

  /** Opens the object a URL from createDownloadUrl names, after checking signature and expiry. */
  async openDownload(
    query: Record<string, string | undefined>,
  ): Promise<{ key: string; bytes: number; contentType: string; body: Readable }> {
    const { signer } = this.#signing();
    const key = query.key ?? '';
    const expiresAtSec = Number(query.exp);
    if (
      !Number.isSafeInteger(expiresAtSec) ||
      !signer.check({ method: 'GET', key, expiresAtSec }, query.sig ?? '')
    ) {
      throw new LinesightError(
        'ERR_CLOUD_FORBIDDEN',
        'download URL signature does not match: the URL was altered or not issued by this cloud',
      );
    }
    if (Math.floor(this.#now() / 1000) >= expiresAtSec) {
      throw new LinesightError('ERR_CLOUD_UPLOAD_EXPIRED', 'download URL expired');
    }
    const s = await this.stat(key);
    if (s === undefined) throw blobMissing(key);
    return { key, bytes: s.bytes, contentType: contentTypeOf(key), body: await this.read(key) };
  }

  #signing(): { signer: UrlSigner; base: string } {
    if (this.#signer === undefined || this.#publicUrl === undefined) {
      throw new LinesightError(
        'ERR_CLOUD_CONFIG',
        'this local blob store has no URL signer or public URL; it cannot make signed URLs',
      );
    }
    return { signer: this.#signer, base: this.#publicUrl().replace(/\/+$/, '') };
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

/** The content type a download answers with, from the key's extension. */
function contentTypeOf(key: string): string {
  const ext = key.slice(key.lastIndexOf('.') + 1).toLowerCase();
  if (ext === 'jpg' || ext === 'jpeg') return 'image/jpeg';
  if (ext === 'png') return 'image/png';
  if (ext === 'json') return 'application/json';
  return 'application/octet-stream';
}
