import { createHash } from 'node:crypto';
import {
  Backoff,
  LinesightError,
  isLinesightError,
  type BackoffOptions,
} from '@linesight/protocol';
import {
  errorText,
  messageOf,
  requestUploads,
  type UploadCredentials,
  type UploadObject,
  type UploadTarget,
} from './upload-client.ts';
import type { CloudFetch } from '../cloud-tls.ts';

/** Options of putObject. */
export interface PutObjectOptions {
  /** A target from requestUploads that is not alreadyStored. */
  target: UploadTarget;
  /** The object's bytes; checked against `expected` before the first attempt. */
  body: Uint8Array;
  expected: { bytes: number; sha256: string };
  /** Deadline of one attempt (connect, send, answer). */
  timeoutMs: number;
  /** Attempts in all, the first included (default 5). */
  maxAttempts?: number;
  /** Delay between attempts (default 500 ms doubling to 30 s, half jittered). */
  backoff?: BackoffOptions;
  /** Aborts waiting and the attempt in flight (the agent's close()). */
  signal?: AbortSignal;
  now?: () => number;
  /** fetch with the cloud's pinned CA for URLs of the cloud (default: plain fetch). */
  fetch?: CloudFetch;
}

/** What putObject did. */
export interface PutObjectReport {
  attempts: number;
}

/**
 * PUTs one object to its upload URL with exactly the given method and
 * headers. Retries network errors, timeouts, 5xx and 429 with capped
 * exponential backoff and jitter, up to `maxAttempts`; never retries another
 * 4xx. Throws ERR_AGENT_UPLOAD_EXPIRED when the URL expired (before or during
 * the attempts: ask for a new URL), ERR_AGENT_UPLOAD otherwise, with
 * `details.retryable` saying whether a later try may succeed.
 */
export async function putObject(options: PutObjectOptions): Promise<PutObjectReport> {
  const { target, body, expected } = options;
  if (target.url === undefined || target.alreadyStored) {
    throw new LinesightError('ERR_AGENT_UPLOAD', `${target.key} has no upload URL to PUT to`, {
      details: { retryable: false },
    });
  }
  checkBody(target.key, body, expected);
  const now = options.now ?? Date.now;
  const expiresAtMs = target.expiresAt === undefined ? Infinity : Date.parse(target.expiresAt);
  const maxAttempts = options.maxAttempts ?? 5;
  const backoff = new Backoff(options.backoff ?? {});
  let lastError: LinesightError | undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (now() >= expiresAtMs) throw expired(target.key);
    try {
      await attemptPut(target.url, target, body, options);
      return { attempts: attempt };
    } catch (err) {
      if (!isLinesightError(err)) throw err;
      if (err.code === 'ERR_AGENT_UPLOAD_EXPIRED' || err.details?.retryable !== true) throw err;
      if (options.signal?.aborted === true) throw err;
      lastError = err;
    }
    if (attempt < maxAttempts) await sleep(backoff.next(), options.signal);
  }
  throw new LinesightError(
    'ERR_AGENT_UPLOAD',
    `upload of ${target.key} failed ${maxAttempts} times; last: ${lastError?.message ?? 'unknown'}`,
    { cause: lastError, details: { retryable: true, attempts: maxAttempts } },
  );
}

async function attemptPut(
  url: string,
  target: UploadTarget,
  body: Uint8Array,
  options: PutObjectOptions,
): Promise<void> {
  const signals = [AbortSignal.timeout(options.timeoutMs)];
  if (options.signal !== undefined) signals.push(options.signal);
  let response: Response;
  let text: string;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method: target.method ?? 'PUT',
      headers: target.headers ?? {},
      body,
      signal: AbortSignal.any(signals),
    });
    text = await response.text();
  } catch (cause) {
    throw new LinesightError(
      'ERR_AGENT_UPLOAD',
      `upload of ${target.key} failed: ${messageOf(cause)}`,
      { cause, details: { retryable: true } },
    );
  }
  if (response.ok) return;
  // Local store: {"error":"ERR_CLOUD_UPLOAD_EXPIRED"}; S3: "Request has expired"; s3rver: ExpiredToken.
  if (response.status < 500 && /UPLOAD_EXPIRED|Request has expired|ExpiredToken/i.test(text)) {
    throw expired(target.key);
  }
  throw new LinesightError(
    'ERR_AGENT_UPLOAD',
    `upload of ${target.key} answered HTTP ${response.status}: ${errorText(text)}`,
    {
      details: {
        status: response.status,
        retryable: response.status >= 500 || response.status === 429,
      },
    },
  );
}

function checkBody(key: string, body: Uint8Array, expected: { bytes: number; sha256: string }) {
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (body.byteLength !== expected.bytes || sha256 !== expected.sha256) {
    throw new LinesightError(
      'ERR_AGENT_UPLOAD',
      `${key}: the bytes to upload (${body.byteLength}, sha256 ${sha256.slice(0, 12)}) differ from the declared ${expected.bytes} bytes, sha256 ${expected.sha256.slice(0, 12)}`,
      { details: { retryable: false, corrupt: true } },
    );
  }
}

function expired(key: string): LinesightError {
  return new LinesightError(
    'ERR_AGENT_UPLOAD_EXPIRED',
    `the upload URL of ${key} expired; ask for a new one`,
  );
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(aborted());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function aborted(): LinesightError {
  return new LinesightError('ERR_AGENT_UPLOAD', 'upload stopped: the uploader is closing', {
    details: { retryable: true },
  });
}

/** Options of uploadObject. */
export interface UploadObjectOptions extends UploadCredentials {
  object: UploadObject;
  body: Uint8Array;
  /** Deadline of the URL request and of each PUT attempt. */
  timeoutMs: number;
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** New URLs asked for after an expiry, at most (default 2). */
  maxRenewals?: number;
  signal?: AbortSignal;
}

/** What uploadObject did. */
export interface UploadObjectReport {
  key: string;
  /** The cloud already held the object: nothing was sent. */
  alreadyStored: boolean;
  attempts: number;
  /** URLs asked for again after one expired. */
  renewals: number;
}

/**
 * Uploads one object end to end: asks for its URL, PUTs it (with retries) and,
 * when the URL expires on the way, asks for a new one. Idempotent by name: an
 * object already stored with the same sha256 is not sent again.
 */
export async function uploadObject(options: UploadObjectOptions): Promise<UploadObjectReport> {
  const maxRenewals = options.maxRenewals ?? 2;
  let attempts = 0;
  for (let renewals = 0; ; renewals++) {
    const [target] = await requestUploads({ ...options, objects: [options.object] });
    if (target === undefined) throw new Error('requestUploads returned no target');
    if (target.alreadyStored) {
      return { key: target.key, alreadyStored: true, attempts, renewals };
    }
    try {
      const report = await putObject({
        target,
        body: options.body,
        expected: options.object,
        timeoutMs: options.timeoutMs,
        ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
        ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      attempts += report.attempts;
      return { key: target.key, alreadyStored: false, attempts, renewals };
    } catch (err) {
      if (!isLinesightError(err, 'ERR_AGENT_UPLOAD_EXPIRED') || renewals >= maxRenewals) throw err;
      attempts += 1;
    }
  }
}
