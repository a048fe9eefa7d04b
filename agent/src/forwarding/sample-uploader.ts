import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { describeError, isLinesightError } from '@linesight/protocol';
import type { StoredSample } from '../store/edge-store.ts';
import { putObject, uploadObject } from '../uploads/put-object.ts';
import {
  MAX_UPLOADS_PER_REQUEST,
  requestUploads,
  type UploadCredentials,
  type UploadObject,
} from '../uploads/upload-client.ts';
import type { SampleUploader } from './forwarder.ts';

/** Options of the HTTP sample uploader. */
export interface HttpSampleUploaderOptions extends UploadCredentials {
  logger: Logger;
  /** Deadline of each URL request and PUT attempt (default 30 s). */
  timeoutMs?: number;
  /** PUTs in flight at once (default 4). */
  concurrency?: number;
}

interface Planned {
  sample: number;
  object: UploadObject;
  path: string;
}

/**
 * Uploads sampled images and their heatmaps through the cloud's short-lived
 * upload URLs (idempotent by name: `<boot>-<seq>.jpg`, `<boot>-<seq>-map.png`),
 * so the device never holds storage credentials. One URL request per round,
 * then a few PUTs at a time; a URL that expires on the way is renewed. A
 * sample whose upload fails is retried on a later round.
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
    const planned: Planned[] = [];
    samples.forEach((s, i) => {
      planned.push({
        sample: i,
        object: {
          name: `${s.boot}-${s.seq}.jpg`,
          contentType: 'image/jpeg',
          bytes: s.imageBytes,
          sha256: s.imageSha256,
        },
        path: s.imagePath,
      });
      if (s.mapPath !== undefined && s.mapSha256 !== undefined)
        planned.push({
          sample: i,
          object: {
            name: `${s.boot}-${s.seq}-map.png`,
            contentType: 'image/png',
            bytes: s.mapBytes,
            sha256: s.mapSha256,
          },
          path: s.mapPath,
        });
    });
    const keys = new Map<string, string>();
    const failed = new Set<number>();
    const timeoutMs = this.#o.timeoutMs ?? 30_000;
    for (let at = 0; at < planned.length; at += MAX_UPLOADS_PER_REQUEST) {
      const chunk = planned.slice(at, at + MAX_UPLOADS_PER_REQUEST);
      let targets;
      try {
        targets = await requestUploads({
          ...this.#credentials(),
          objects: chunk.map((p) => p.object),
          timeoutMs,
          signal: this.#abort.signal,
        });
      } catch (err) {
        if (this.#abort.signal.aborted)
          this.#o.logger.debug({ err: describeError(err) }, 'upload URL request stopped by close');
        else this.#o.logger.warn({ err: describeError(err) }, 'upload URLs refused; will retry');
        for (const p of chunk) failed.add(p.sample);
        continue;
      }
      let next = 0;
      const worker = async () => {
        while (next < chunk.length) {
          const i = next++;
          const p = chunk[i] as Planned;
          const target = targets[i];
          if (target === undefined || failed.has(p.sample)) continue;
          try {
            if (!target.alreadyStored) {
              const body = await readFile(p.path);
              try {
                await putObject({
                  ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}),
                  target,
                  body,
                  expected: p.object,
                  timeoutMs,
                  signal: this.#abort.signal,
                });
              } catch (err) {
                // An expired URL (a long backlog) gets a new one; other failures wait for the next round.
                if (!isLinesightError(err, 'ERR_AGENT_UPLOAD_EXPIRED')) throw err;
                await uploadObject({
                  ...this.#credentials(),
                  object: p.object,
                  body,
                  timeoutMs,
                  signal: this.#abort.signal,
                });
              }
            }
            keys.set(p.object.name, target.key);
          } catch (err) {
            failed.add(p.sample);
            // The quota evicted the sample while it waited for its turn: nothing to retry.
            if ((err as { code?: unknown }).code === 'ENOENT')
              this.#o.logger.debug({ object: p.object.name }, 'sample evicted before its upload');
            // Stopped on purpose (the agent closes): the sample stays stored for the next start.
            else if (this.#abort.signal.aborted)
              this.#o.logger.debug({ object: p.object.name }, 'sample upload stopped by close');
            else
              this.#o.logger.warn(
                { object: p.object.name, err: describeError(err) },
                'sample upload failed; will retry',
              );
          }
        }
      };
      await Promise.all(Array.from({ length: this.#o.concurrency ?? 4 }, () => worker()));
    }
    return samples.map((s, i) => {
      const objectKey = keys.get(`${s.boot}-${s.seq}.jpg`);
      if (failed.has(i) || objectKey === undefined) return undefined;
      const mapKey = s.mapPath === undefined ? undefined : keys.get(`${s.boot}-${s.seq}-map.png`);
      if (s.mapPath !== undefined && mapKey === undefined) return undefined;
      return { objectKey, ...(mapKey !== undefined ? { mapKey } : {}) };
    });
  }

  /** Stops uploads in progress. */
  close(): void {
    this.#abort.abort();
  }

  #credentials(): UploadCredentials {
    return {
      cloudUrl: this.#o.cloudUrl,
      deviceId: this.#o.deviceId,
      username: this.#o.username,
      password: this.#o.password,
      ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}),
    };
  }
}
