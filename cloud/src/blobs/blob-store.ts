import type { Readable } from 'node:stream';
import { LinesightError } from '@linesight/protocol';

/** What a store knows about an object without reading it. */
export interface BlobStat {
  bytes: number;
  /** Hex sha256 when the store holds it (S3 checksum or metadata); use verify() for a definite answer. */
  sha256?: string;
}

/** An object a client is allowed to upload: exactly these bytes under this key. */
export interface UploadSpec {
  key: string;
  contentType: string;
  bytes: number;
  /** Hex sha256 of the body. */
  sha256: string;
  ttlSec: number;
}

/** A signed, expiring upload: PUT the body to `url` with exactly `headers`. */
export interface UploadTarget {
  url: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
}

/** One object a listing found. */
export interface BlobListEntry {
  key: string;
  bytes: number;
  /** When the object was last written (S3 LastModified, the file's mtime). */
  modifiedAt: Date;
}

/** How a listing pages through the store. */
export interface BlobListOptions {
  /** Objects fetched per request (S3 MaxKeys; default 1000); memory stays bounded by it. */
  pageSize?: number;
}

/** Whether a stored object is the one expected. */
export type VerifyResult = 'ok' | 'missing' | 'mismatch';

/**
 * Object storage for artifacts and images: a local folder by default, S3 when
 * configured. Keys are `/`-separated paths of `[A-Za-z0-9_.@+-]` segments.
 */
export interface BlobStore {
  /** `local` or `s3`, for logs and /healthz. */
  readonly kind: 'local' | 's3';
  /** Stores bytes under a key atomically (readers never see a partial object). */
  put(key: string, bytes: Uint8Array, options?: { contentType?: string }): Promise<void>;
  /**
   * Stores a finished local file under a key and removes the file (moved when
   * the store is local, streamed when remote). `sha256` is recorded where the store can.
   */
  putFile(
    key: string,
    path: string,
    options?: { contentType?: string; sha256?: string },
  ): Promise<void>;
  /** Size (and checksum where known) of an object, or undefined when absent. */
  stat(key: string): Promise<BlobStat | undefined>;
  /** An object's bytes, optionally a byte range [start, end] inclusive; ERR_CLOUD_NOT_FOUND when absent. */
  read(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Checks size and sha256 of a stored object (reads it when the store has no checksum). */
  verify(key: string, expected: { bytes: number; sha256: string }): Promise<VerifyResult>;
  /**
   * Every object whose key starts with `prefix`, fetched a page at a time (never
   * the whole store in memory), in no guaranteed order. Objects deleted while the
   * listing runs may or may not appear; temp and partial files never do.
   */
  list(prefix: string, options?: BlobListOptions): AsyncIterable<BlobListEntry>;
  /** Removes an object; absent objects are fine. */
  delete(key: string): Promise<void>;
  /** A signed, expiring URL a client may PUT exactly the declared object to. */
  createUploadUrl(spec: UploadSpec): Promise<UploadTarget>;
  /** A signed URL anyone holding it may GET the object from, valid for `ttlSec`. */
  createDownloadUrl(key: string, ttlSec: number): Promise<string>;
  /** Where a key lives on local disk, for tools and tests; undefined for remote stores. */
  localPath(key: string): string | undefined;
  /** Releases clients and sockets; idempotent. */
  close(): Promise<void>;
}

// Segments never start with a dot, so no key names `..` or the local store's `.tmp` folder;
// `+` is allowed for semver build metadata in model keys.
const KEY = /^[A-Za-z0-9_-][A-Za-z0-9_.@+-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9_.@+-]*)*$/;

/** True when `key` is a valid blob key (what checkBlobKey accepts). */
export function isBlobKey(key: string): boolean {
  return key.length <= 512 && KEY.test(key);
}

/** Throws ERR_CLOUD_BAD_REQUEST unless `key` is a valid blob key (no `..`, no empty or dot-led segment). */
export function checkBlobKey(key: string): void {
  if (!isBlobKey(key)) {
    throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `invalid blob key ${JSON.stringify(key)}`);
  }
}

/** The ERR_CLOUD_NOT_FOUND a store throws for an absent object. */
export function blobMissing(key: string, cause?: unknown): LinesightError {
  return new LinesightError('ERR_CLOUD_NOT_FOUND', `object ${key} is not in the blob store`, {
    ...(cause === undefined ? {} : { cause }),
  });
}
