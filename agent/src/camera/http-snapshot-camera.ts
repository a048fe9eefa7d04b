import { Backoff, LinesightError, backoffProblems, type BackoffOptions } from '@linesight/protocol';
import { sniffImageFormat } from '@linesight/vision';
import type { Camera, FrameSink } from './camera.ts';
import { PacedLoop } from './paced-loop.ts';
import { redactCredentials } from './redact-credentials.ts';
import { deliverToSink, reportToSink } from './sink-guard.ts';

/** Options of an HTTP snapshot camera; `url` and `fps` are required. */
export interface HttpSnapshotCameraOptions {
  /** http(s) URL answering each GET with one JPEG or PNG; user-info becomes Basic auth. */
  url: string;
  /** Polls per second, > 0. */
  fps: number;
  /** Limit for one request, headers and body (default 5 000). */
  timeoutMs?: number;
  /** Largest body accepted (default 16 MiB). */
  maxBytes?: number;
  /** Retry delays after a failed poll (default 0.5 s doubling to 30 s, with jitter). */
  backoff?: BackoffOptions;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The fetch implementation (default: the global one); tests pass a stub. */
  fetch?: typeof fetch;
}

/** Counters of an HTTP snapshot camera. */
export interface HttpSnapshotCameraStats {
  framesDelivered: number;
  /** Polls that failed (network error, timeout, non-2xx, not an image, too large). */
  failures: number;
  /** Failures since the last success. */
  consecutiveFailures: number;
}

/** Default `maxBytes` of an HTTP snapshot. */
export const DEFAULT_MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;

// A poll failure: its message and details go into the ERR_CAMERA report.
class PollError extends Error {
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

// fetch wraps socket errors as "fetch failed" with the real reason as its cause.
function networkReason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

interface ParsedUrl {
  href: string;
  authorization: string | undefined;
  redacted: string;
}

function parseUrl(raw: string): ParsedUrl | undefined {
  // The WHATWG parser is lenient (`http:cam/x` is http://cam/x): insist on the full form.
  if (!/^https?:\/\/[^/]/i.test(raw)) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  // fetch refuses URLs with credentials; IP cameras commonly carry them there.
  let authorization: string | undefined;
  if (url.username !== '' || url.password !== '') {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  return { href: url.href, authorization, redacted: redactCredentials(raw) };
}

/**
 * A camera that polls an HTTP snapshot URL (a JPEG or PNG per GET) at a fixed
 * rate, one request at a time. A failed request, a non-2xx answer, a body
 * that is not a JPEG or PNG (by its magic bytes) or one that is too large is
 * reported to the sink as ERR_CAMERA and retried after a capped exponential
 * backoff with jitter, which resets after the next success.
 */
export class HttpSnapshotCamera implements Camera {
  readonly description: string;
  readonly #url: ParsedUrl;
  readonly #loop: PacedLoop;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;
  readonly #backoff: Backoff;
  #sink: FrameSink | undefined;
  #delivered = 0;
  #failures = 0;
  #abort: AbortController | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Validates options (throws ERR_CAMERA listing every problem); does not poll yet. */
  constructor(options: HttpSnapshotCameraOptions) {
    const problems: string[] = [];
    const url = parseUrl(options.url);
    if (url === undefined) problems.push('url must be an absolute http: or https: URL');
    if (!(Number.isFinite(options.fps) && options.fps > 0)) problems.push('fps must be > 0');
    const timeoutMs = options.timeoutMs ?? 5_000;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) problems.push('timeoutMs must be > 0');
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES;
    if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
      problems.push('maxBytes must be a positive integer');
    }
    problems.push(...backoffProblems(options.backoff ?? {}));
    if (url === undefined || problems.length > 0) {
      throw new LinesightError(
        'ERR_CAMERA',
        `invalid http camera options: ${problems.join('; ')}`,
        { details: { problems } },
      );
    }
    this.#url = url;
    // Request time and timer lateness do not add up; a slow answer more than a
    // period behind is followed by a poll at once, not a burst.
    this.#loop = new PacedLoop(options.fps, () => this.#poll());
    this.#timeoutMs = timeoutMs;
    this.#maxBytes = maxBytes;
    this.#headers = {
      accept: 'image/jpeg, image/png',
      ...options.headers,
      ...(url.authorization === undefined ? {} : { authorization: url.authorization }),
    };
    this.#fetch = options.fetch ?? fetch;
    this.#backoff = new Backoff(options.backoff);
    this.description = `http(${url.redacted} @ ${options.fps} fps)`;
  }

  /** Number of frames delivered so far (equals the next seq). */
  get framesDelivered(): number {
    return this.#delivered;
  }

  /** Counters: frames delivered, failed polls. */
  get stats(): HttpSnapshotCameraStats {
    return {
      framesDelivered: this.#delivered,
      failures: this.#failures,
      consecutiveFailures: this.#backoff.attempt,
    };
  }

  /** Starts polling, the first request at once; rejects if started before or closed. */
  async start(sink: FrameSink): Promise<void> {
    if (this.#closed) throw new LinesightError('ERR_CAMERA', 'http camera is closed');
    if (this.#sink !== undefined) {
      throw new LinesightError('ERR_CAMERA', 'http camera is already started');
    }
    this.#sink = sink;
    this.#loop.start();
  }

  /** Stops polling, aborts a request in flight and waits for it to settle; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    const stopped = this.#loop.stop();
    this.#abort?.abort(new Error('camera closed'));
    await stopped;
  }

  // Never rejects: failures go to the sink and set the retry time.
  async #poll(): Promise<void> {
    const capturedAt = new Date();
    let image: Buffer;
    try {
      image = await this.#get();
    } catch (err) {
      if (this.#closed) return;
      this.#failures += 1;
      const retryInMs = this.#backoff.next();
      const poll =
        err instanceof PollError
          ? err
          : new PollError(`request failed (${networkReason(err)})`, {}, { cause: err });
      const cause = poll.cause;
      reportToSink(
        this.#sink,
        new LinesightError(
          'ERR_CAMERA',
          `http camera ${this.#url.redacted}: ${poll.message}; retrying in ${retryInMs} ms`,
          {
            ...(cause === undefined ? {} : { cause }),
            details: {
              url: this.#url.redacted,
              ...poll.details,
              attempt: this.#backoff.attempt,
              retryInMs,
            },
          },
        ),
      );
      // The next poll is due the backoff delay after the failure was reported (not
      // before: building and reporting the error can take a while on a busy
      // machine); then the cadence resumes.
      this.#loop.delayNextUntil(performance.now() + retryInMs);
      return;
    }
    if (this.#closed) return;
    this.#backoff.reset();
    const seq = this.#delivered++;
    deliverToSink(this.#sink, { seq, capturedAt, image });
  }

  async #get(): Promise<Buffer> {
    const abort = new AbortController();
    this.#abort = abort;
    const timer = setTimeout(
      () => abort.abort(new PollError(`no complete answer within ${this.#timeoutMs} ms`)),
      this.#timeoutMs,
    );
    try {
      let res: Response;
      try {
        res = await this.#fetch(this.#url.href, {
          headers: this.#headers,
          signal: abort.signal,
          redirect: 'follow',
        });
      } catch (cause) {
        throw abort.signal.aborted ? abort.signal.reason : cause;
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        throw new PollError(`answered ${res.status} ${res.statusText}`.trim(), {
          status: res.status,
        });
      }
      const declared = Number(res.headers.get('content-length') ?? Number.NaN);
      if (declared > this.#maxBytes) {
        await res.body?.cancel().catch(() => {});
        throw new PollError(`body of ${declared} bytes exceeds ${this.#maxBytes}`, {
          bytes: declared,
        });
      }
      const body = await this.#readBody(res, abort);
      const format = sniffImageFormat(body);
      if (format === undefined) {
        throw new PollError(
          `answered ${body.length} bytes that are not a JPEG or PNG (content-type ${res.headers.get('content-type') ?? 'none'})`,
          { bytes: body.length, contentType: res.headers.get('content-type') },
        );
      }
      return body;
    } finally {
      clearTimeout(timer);
      if (this.#abort === abort) this.#abort = undefined;
    }
  }

  // Reads the body, refusing it as soon as it exceeds maxBytes.
  async #readBody(res: Response, abort: AbortController): Promise<Buffer> {
    if (res.body === null) return Buffer.alloc(0);
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > this.#maxBytes) {
          await reader.cancel().catch(() => {});
          throw new PollError(`body exceeds ${this.#maxBytes} bytes`, { bytes: total });
        }
        chunks.push(value);
      }
    } catch (err) {
      if (err instanceof PollError) throw err;
      throw abort.signal.aborted ? abort.signal.reason : err;
    }
    return Buffer.concat(chunks, total);
  }
}
