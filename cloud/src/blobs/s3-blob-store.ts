import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { LinesightError } from '@linesight/protocol';
import {
  blobMissing,
  checkBlobKey,
  type BlobListEntry,
  type BlobListOptions,
  type BlobStat,
  type BlobStore,
  type UploadSpec,
  type UploadTarget,
  type VerifyResult,
} from './blob-store.ts';

/** Static credentials; without them the SDK's default provider chain is used (instance roles, profiles). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where the S3 store keeps objects. */
export interface S3BlobStoreOptions {
  bucket: string;
  region: string;
  /** An S3-compatible endpoint (MinIO, s3rver); AWS when absent. */
  endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. */
  forcePathStyle?: boolean;
  credentials?: S3Credentials;
  /** Deadline of one S3 request. */
  requestTimeoutMs?: number;
  /** Clock for presigning (tests sign in the past to get expired URLs). */
  now?: () => number;
}

// Recorded on every object the cloud writes or presigns, so stat() knows the sha256 even
// where the server does not compute checksums.
const SHA256_META = 'sha256';

const PROBE_KEY = '_linesight/start-probe';

const hexToBase64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

/**
 * A BlobStore in an S3 bucket (AWS S3, MinIO or any S3-compatible server).
 * Uploads by devices are presigned PUTs that sign the content type, length and
 * sha256 checksum, so the server refuses another size, and S3 itself refuses
 * another body; verify() re-checks after the fact where a server cannot.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  readonly bucket: string;
  readonly #client: S3Client;
  readonly #now: () => number;
  #closed = false;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.#now = options.now ?? Date.now;
    this.#client = new S3Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      // Checksums only where we ask for them: a default CRC32 over the (empty) presign body would break uploads.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { requestTimeout: options.requestTimeoutMs ?? 30_000 },
      maxAttempts: 3,
    });
  }

  /** Checks that the bucket exists and the credentials reach it; ERR_CLOUD_CONFIG otherwise. */
  async start(): Promise<void> {
    try {
      // Writing and deleting a probe checks exactly the permissions the store needs (no
      // s3:ListBucket), and works on servers that mis-sign bucket-level requests (s3rver).
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: PROBE_KEY, Body: 'ok', ContentLength: 2 }),
      );
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: PROBE_KEY }));
    } catch (cause) {
      throw new LinesightError(
        'ERR_CLOUD_CONFIG',
        `S3 bucket ${this.bucket} cannot be reached: ${describeS3(cause)} (check --s3-endpoint, --s3-region, the bucket name and the AWS credentials)`,
        { cause },
      );
    }
  }

  localPath(): undefined {
    return undefined;
  }

  async put(key: string, bytes: Uint8Array, options: { contentType?: string } = {}): Promise<void> {
    checkBlobKey(key);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await this.#send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: bytes,
        ContentLength: bytes.byteLength,
        ContentType: options.contentType ?? 'application/octet-stream',
        ChecksumSHA256: hexToBase64(sha256),
        Metadata: { [SHA256_META]: sha256 },
      }),
    );
  }

  async putFile(
    key: string,
    path: string,
    options: { contentType?: string; sha256?: string } = {},
  ): Promise<void> {
    try {
      checkBlobKey(key);
      const { size } = await stat(path);
      await this.#send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          // Streamed from disk: a large model is never held in memory.
          Body: createReadStream(path),
          ContentLength: size,
          ContentType: options.contentType ?? 'application/octet-stream',
          ...(options.sha256 === undefined
            ? {}
            : {
                ChecksumSHA256: hexToBase64(options.sha256),
                Metadata: { [SHA256_META]: options.sha256 },
              }),
        }),
      );
    } finally {
      await rm(path, { force: true });
    }
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    const head = await this.#head(key);
    if (head === undefined) return undefined;
    const sha256 = head.checkedSha256 ?? head.declaredSha256;
    return { bytes: head.bytes, ...(sha256 === undefined ? {} : { sha256 }) };
  }

  /** HEAD with the server's checksum (set only where the server verified it) and our metadata. */
  async #head(
    key: string,
  ): Promise<{ bytes: number; checkedSha256?: string; declaredSha256?: string } | undefined> {
    checkBlobKey(key);
    try {
      const head = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }),
      );
      const checked =
        head.ChecksumSHA256 !== undefined && !head.ChecksumSHA256.includes('-')
          ? Buffer.from(head.ChecksumSHA256, 'base64').toString('hex')
          : undefined;
      const declared = head.Metadata?.[SHA256_META];
      return {
        bytes: head.ContentLength ?? 0,
        ...(checked === undefined ? {} : { checkedSha256: checked }),
        ...(declared === undefined ? {} : { declaredSha256: declared }),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storageError('stat', err);
    }
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    checkBlobKey(key);
    try {
      const out = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }),
        }),
      );
      if (!(out.Body instanceof Readable)) {
        throw new LinesightError('ERR_CLOUD_STORAGE', `S3 returned no body stream for ${key}`);
      }
      return out.Body;
    } catch (err) {
      if (isNotFound(err)) throw blobMissing(key, err);
      throw storageError('read', err);
    }
  }

  async verify(key: string, expected: { bytes: number; sha256: string }): Promise<VerifyResult> {
    const head = await this.#head(key);
    if (head === undefined) return 'missing';
    if (head.bytes !== expected.bytes) return 'mismatch';
    // A checksum the server computed (AWS S3, MinIO) is proof; the metadata value is only what
    // the uploader declared, so without the former the bytes themselves are hashed.
    if (head.checkedSha256 !== undefined) {
      return head.checkedSha256 === expected.sha256 ? 'ok' : 'mismatch';
    }
    const hash = createHash('sha256');
    for await (const chunk of await this.read(key)) hash.update(chunk as Buffer);
    return hash.digest('hex') === expected.sha256 ? 'ok' : 'mismatch';
  }

  /** ListObjectsV2, one page of `pageSize` keys per request, following continuation tokens. */
  async *list(prefix: string, options: BlobListOptions = {}): AsyncIterable<BlobListEntry> {
    const maxKeys = Math.min(Math.max(options.pageSize ?? 1000, 1), 1000);
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            MaxKeys: maxKeys,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
      } catch (err) {
        throw storageError('list', err);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield {
          key: o.Key,
          bytes: o.Size ?? 0,
          // A server that leaves the date out gets "now": young, so no sweep takes it for old.
          modifiedAt: o.LastModified ?? new Date(this.#now()),
        };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(key: string): Promise<void> {
    checkBlobKey(key);
    await this.#send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async createUploadUrl(spec: UploadSpec): Promise<UploadTarget> {
    checkBlobKey(spec.key);
    const checksum = hexToBase64(spec.sha256);
    const signingDate = new Date(this.#now());
    const url = await getSignedUrl(
      this.#client,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: spec.key,
        ContentType: spec.contentType,
        ContentLength: spec.bytes,
        ChecksumSHA256: checksum,
        Metadata: { [SHA256_META]: spec.sha256 },
      }),
      {
        expiresIn: spec.ttlSec,
        signingDate,
        // Signed as headers, so the client must send exactly these: another size, type or
        // checksum breaks the signature, and S3 checks the body against the checksum.
        signableHeaders: new Set(['content-type', 'content-length']),
        unhoistableHeaders: new Set(['x-amz-checksum-sha256', `x-amz-meta-${SHA256_META}`]),
      },
    );
    return {
      url,
      method: 'PUT',
      headers: {
        'content-type': spec.contentType,
        'content-length': String(spec.bytes),
        'x-amz-checksum-sha256': checksum,
        [`x-amz-meta-${SHA256_META}`]: spec.sha256,
      },
      expiresAt: new Date(signingDate.getTime() + spec.ttlSec * 1000).toISOString(),
    };
  }

  async createDownloadUrl(key: string, ttlSec: number): Promise<string> {
    checkBlobKey(key);
    return getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: ttlSec,
      signingDate: new Date(this.#now()),
    });
  }

  async #send(command: PutObjectCommand | DeleteObjectCommand): Promise<void> {
    try {
      await this.#client.send(command as PutObjectCommand);
    } catch (err) {
      throw storageError('write', err);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof S3ServiceException &&
    (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404)
  );
}

function describeS3(err: unknown): string {
  if (err instanceof S3ServiceException) {
    return `${err.name} (HTTP ${err.$metadata.httpStatusCode ?? '?'})`;
  }
  return err instanceof Error ? err.message : String(err);
}

// The key stays out of the message (clients see it); the cause, logged by the cloud, has it.
function storageError(what: string, cause: unknown): LinesightError {
  if (cause instanceof LinesightError) return cause;
  return new LinesightError(
    'ERR_CLOUD_STORAGE',
    `object store ${what} failed: ${describeS3(cause)}`,
    {
      cause,
    },
  );
}
