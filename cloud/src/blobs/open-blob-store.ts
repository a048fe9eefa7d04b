import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CloudConfig } from '../config.ts';
import type { BlobStore } from './blob-store.ts';
import { LocalBlobStore } from './local-blob-store.ts';
import { UrlSigner } from './url-signer.ts';

/** The cloud's object store, and the local one when blobs live in the data dir. */
export interface OpenedBlobStore {
  blobs: BlobStore;
  /** Set for the local store: it also serves the signed upload and download routes. */
  local: LocalBlobStore | undefined;
  /** A fresh path for a file that will be handed to `blobs.putFile` (same filesystem as the local store). */
  tempFile: () => Promise<string>;
}

/**
 * Opens S3 when `s3Bucket` is configured (the AWS SDK is loaded only then),
 * else the folder `<dataDir>/blobs` with URLs signed by `<dataDir>/blob-url.key`.
 */
export async function openBlobStore(
  config: CloudConfig,
  dataDir: string,
  publicUrl: () => string,
): Promise<OpenedBlobStore> {
  if (config.s3Bucket !== undefined) {
    const { S3BlobStore } = await import('./s3-blob-store.ts');
    const blobs = new S3BlobStore({
      bucket: config.s3Bucket,
      region: config.s3Region,
      forcePathStyle: config.s3ForcePathStyle,
      ...(config.s3Endpoint === undefined ? {} : { endpoint: config.s3Endpoint }),
      ...(config.s3Credentials === undefined ? {} : { credentials: config.s3Credentials }),
    });
    try {
      await blobs.start();
    } catch (err) {
      await blobs.close();
      throw err;
    }
    // Uploads are staged on local disk before they are streamed to S3; leftovers of a crash go at start.
    const tmp = join(dataDir, 'tmp');
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    return {
      blobs,
      local: undefined,
      tempFile: async () => join(tmp, randomBytes(12).toString('hex')),
    };
  }
  const local = new LocalBlobStore({
    root: join(dataDir, 'blobs'),
    signer: await UrlSigner.open(join(dataDir, 'blob-url.key')),
    publicUrl,
  });
  await local.start();
  return { blobs: local, local, tempFile: () => local.tempPath() };
}
