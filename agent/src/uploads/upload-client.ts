import {
  LinesightError,
  MAX_UPLOADS_PER_REQUEST,
  type UploadObject,
  type UploadTarget,
} from '@linesight/protocol';
import { basicAuthHeader, type CloudFetch } from '../cloud-tls.ts';

export type { UploadObject, UploadTarget } from '@linesight/protocol';

/** How to reach the cloud as this device. */
export interface UploadCredentials {
  /** Base URL of the cloud HTTP API. */
  cloudUrl: string;
  deviceId: string;
  /** HTTP Basic credentials of the device (the same as for artifacts). */
  username: string;
  password: string;
  /** fetch with the cloud's pinned CA (default: plain fetch). */
  fetch?: CloudFetch;
}

/** Options of requestUploads. */
export interface RequestUploadsOptions extends UploadCredentials {
  objects: readonly UploadObject[];
  /** Deadline for the whole request. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export { MAX_UPLOADS_PER_REQUEST } from '@linesight/protocol';

/**
 * Asks the cloud for upload URLs (POST /v1/devices/:deviceId/uploads), one
 * per object, in the order given. ERR_AGENT_UPLOAD with `details.status`
 * (absent for network errors and timeouts) and `details.retryable` (network
 * errors, timeouts, 5xx and 429) when it fails.
 */
export async function requestUploads(options: RequestUploadsOptions): Promise<UploadTarget[]> {
  if (options.objects.length === 0) return [];
  if (options.objects.length > MAX_UPLOADS_PER_REQUEST) {
    throw new LinesightError(
      'ERR_AGENT_UPLOAD',
      `at most ${MAX_UPLOADS_PER_REQUEST} objects per upload request, got ${options.objects.length}`,
      { details: { retryable: false } },
    );
  }
  const url = `${options.cloudUrl.replace(/\/+$/, '')}/v1/devices/${encodeURIComponent(options.deviceId)}/uploads`;
  const signals = [AbortSignal.timeout(options.timeoutMs)];
  if (options.signal !== undefined) signals.push(options.signal);
  let response: Response;
  let text: string;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method: 'POST',
      headers: {
        ...basicAuthHeader(options.username, options.password),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ objects: options.objects }),
      signal: AbortSignal.any(signals),
    });
    text = await response.text();
  } catch (cause) {
    throw new LinesightError(
      'ERR_AGENT_UPLOAD',
      `asking ${url} for upload URLs failed: ${messageOf(cause)}`,
      { cause, details: { retryable: true } },
    );
  }
  if (!response.ok) {
    throw new LinesightError(
      'ERR_AGENT_UPLOAD',
      `asking for upload URLs answered HTTP ${response.status}: ${errorText(text)}`,
      {
        details: {
          status: response.status,
          retryable: response.status >= 500 || response.status === 429,
        },
      },
    );
  }
  const uploads = parseUploads(text, options.objects.length);
  return uploads;
}

function parseUploads(text: string, count: number): UploadTarget[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new LinesightError('ERR_AGENT_UPLOAD', 'upload URL answer is not JSON', {
      cause,
      details: { retryable: true },
    });
  }
  const uploads = (body as { uploads?: unknown }).uploads;
  if (
    !Array.isArray(uploads) ||
    uploads.length !== count ||
    !uploads.every(
      (u: Partial<UploadTarget>) =>
        typeof u.key === 'string' &&
        typeof u.alreadyStored === 'boolean' &&
        (u.alreadyStored || (typeof u.url === 'string' && typeof u.headers === 'object')),
    )
  ) {
    throw new LinesightError(
      'ERR_AGENT_UPLOAD',
      `upload URL answer does not list ${count} uploads with key, url and headers`,
      { details: { retryable: true } },
    );
  }
  return uploads as UploadTarget[];
}

/** The message of a JSON error answer, or the start of the text. */
export function errorText(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // Not JSON (S3 answers XML): show the start of it.
  }
  return text.slice(0, 300);
}

/** A short description of a thrown value, with the cause of a fetch failure. */
export function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
