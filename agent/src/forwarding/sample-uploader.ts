import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { describeError } from '@linesight/protocol';
import type { StoredSample } from '../store/edge-store.ts';
import { uploadObject } from '../uploads/put-object.ts';
import type { UploadCredentials } from '../uploads/upload-client.ts';
import type { SampleUploader } from './forwarder.ts';

/** Options of the HTTP sample uploader. */
export interface HttpSampleUploaderOptions extends UploadCredentials {
  logger: Logger;
  /** Deadline of each URL request and PUT attempt (default 30 s). */
  timeoutMs?: number;
}

/**
 * Uploads sampled images and their heatmaps through the cloud's short-lived
 * upload URLs (idempotent by name: `<boot>-<seq>.jpg`, `<boot>-<seq>-map.png`),
 * so the device never holds storage credentials. A sample whose upload fails
 * is retried on a later round.
 */
export class HttpSampleUploader implements SampleUploader {
  readonly #o: HttpSampleUploaderOptions;
  readonly #abort = new AbortController();

  constructor(options: HttpSampleUploaderOptions) {
    this.#o = options;
  }

  async upload(
    samples: readonly StoredSample[],
  ): Promise<({ objectKey: string; mapKey?: string } | undefined)[]> {
    const out: ({ objectKey: string; mapKey?: string } | undefined)[] = [];
    for (const sample of samples) {
      if (this.#abort.signal.aborted) {
        out.push(undefined);
        continue;
      }
      try {
        const objectKey = await this.#put(
          `${sample.boot}-${sample.seq}.jpg`,
          'image/jpeg',
          sample.imagePath,
          sample.imageSha256,
        );
        const mapKey =
          sample.mapPath === undefined || sample.mapSha256 === undefined
            ? undefined
            : await this.#put(
                `${sample.boot}-${sample.seq}-map.png`,
                'image/png',
                sample.mapPath,
                sample.mapSha256,
              );
        out.push({ objectKey, ...(mapKey !== undefined ? { mapKey } : {}) });
      } catch (err) {
        this.#o.logger.warn(
          { sample: `${sample.boot}-${sample.seq}`, err: describeError(err) },
          'sample upload failed; will retry',
        );
        out.push(undefined);
      }
    }
    return out;
  }

  /** Stops uploads in progress. */
  close(): void {
    this.#abort.abort();
  }

  async #put(
    name: string,
    contentType: 'image/jpeg' | 'image/png',
    path: string,
    sha256: string,
  ): Promise<string> {
    const body = await readFile(path);
    const report = await uploadObject({
      cloudUrl: this.#o.cloudUrl,
      deviceId: this.#o.deviceId,
      username: this.#o.username,
      password: this.#o.password,
      object: { name, contentType, bytes: body.length, sha256 },
      body,
      timeoutMs: this.#o.timeoutMs ?? 30_000,
      signal: this.#abort.signal,
    });
    return report.key;
  }
}
