import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LinesightError, isLinesightError, type Manifest } from '@linesight/protocol';
import { moveIntoPlace } from '@linesight/durable-fs';
import { basicAuthHeader, type CloudFetch } from '../cloud-tls.ts';
import {
  DEFAULT_DISK_MARGIN_BYTES,
  diskFullError,
  formatBytes,
  freeBytesAt,
  isDiskFull,
  type FreeBytesProbe,
} from './disk-space.ts';
import { watchStep, type SlowStepListener } from './step-watch.ts';

/** How to fetch an artifact. */
export interface DownloadRequest {
  url: string;
  manifest: Manifest;
  /** HTTP Basic credentials of the device. */
  username: string;
  password: string;
  destPath: string;
  /** Time allowed without progress before the attempt is abandoned. */
  timeoutMs: number;
  /** Free space that must remain on the disk once the artifact is written (default 16 MiB). */
  marginBytes?: number;
  /** Measures free space (statfs by default; tests inject a full disk where they cannot mount one). */
  freeBytes?: FreeBytesProbe;
  /** fetch with the cloud's pinned CA (default: plain fetch). */
  fetch?: CloudFetch;
  /**
   * Told when a step that cannot be aborted (a write, the final fsync, the move into
   * place, hashing a resumed part) waits longer than `stepLimitMs`, again after each
   * further `stepLimitMs`, and once when it ends: the no-progress limit covers only the
   * network, and a busy disk can hold an fsync for minutes.
   */
  onSlowStep?: SlowStepListener;
  /** The limit of each such step (default: timeoutMs). */
  stepLimitMs?: number;
  /** Flushes the part file to disk (default: fsync; tests inject a slow disk). */
  syncFile?: (file: FileHandle) => Promise<void>;
}

/** What a download did, for logs and tests. */
export interface DownloadReport {
  bytes: number;
  /** Bytes already on disk from an earlier, interrupted attempt. */
  resumedFrom: number;
  /** The resumed file failed verification, so it was discarded and fetched again from zero. */
  restarted: boolean;
}

/**
 * Downloads an artifact to `destPath` through `<destPath>.part`. An
 * interrupted download leaves the part file, and the next call resumes it
 * with an HTTP Range request (starting over if the server ignores the range).
 * Size and sha256 are checked against the signed manifest before the rename
 * into place, so a partial or altered file is never loaded. When a resumed
 * file fails that check (its earlier part was corrupted, e.g. by power loss),
 * it is discarded and fetched once more from zero before being refused.
 * Free space is checked first (the rest of the artifact plus a margin); a
 * full disk removes the part file and throws ERR_AGENT_DISK_FULL.
 * Throws ERR_AGENT_DOWNLOAD (worth retrying; a busy cloud's 503 carries the
 * Retry-After it asked for in details.retryAfterMs), ERR_AGENT_DISK_FULL or
 * ERR_AGENT_MODEL_VERIFY.
 */
export async function downloadArtifact(req: DownloadRequest): Promise<DownloadReport> {
  await mkdir(dirname(req.destPath), { recursive: true });
  try {
    return await attempt(req);
  } catch (err) {
    const resumedFrom = isLinesightError(err, 'ERR_AGENT_MODEL_VERIFY')
      ? Number(err.details?.resumedFrom ?? 0)
      : 0;
    if (resumedFrom === 0) throw err;
    // attempt() removed the part file: this one starts from zero.
    const report = await attempt(req);
    return { ...report, restarted: true };
  }
}

async function attempt(req: DownloadRequest): Promise<DownloadReport> {
  const { manifest } = req;
  const label = `${manifest.name}@${manifest.version}`;
  const part = `${req.destPath}.part`;
  let have = await sizeOf(part);
  if (have > manifest.sizeBytes) {
    await rm(part, { force: true });
    have = 0;
  }
  const watch = <T>(step: string, work: () => Promise<T>) =>
    watchStep(`${step} of ${label}`, req.stepLimitMs ?? req.timeoutMs, req.onSlowStep, work);
  have = await watch('free-space check', () => ensureSpace(req, part, have));
  let hash = createHash('sha256');
  if (have > 0) {
    const resumed = hash;
    await watch('hashing the part already downloaded', () => hashFile(part, resumed));
  }

  const controller = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(
      () => controller.abort(new Error(`no progress for ${req.timeoutMs} ms`)),
      req.timeoutMs,
    );
  };
  armIdle();
  let resumedFrom = have;
  let size = have;
  try {
    let response: Response;
    try {
      response = await (req.fetch ?? fetch)(req.url, {
        headers: {
          ...basicAuthHeader(req.username, req.password),
          ...(have > 0 && have < manifest.sizeBytes ? { range: `bytes=${have}-` } : {}),
        },
        signal: controller.signal,
      });
    } catch (cause) {
      throw new LinesightError(
        'ERR_AGENT_DOWNLOAD',
        `download of ${label} from ${req.url} failed: ${messageOf(cause)}`,
        { cause },
      );
    }
    if (have > 0 && response.status === 200) {
      // The server ignored the range: take its whole body from zero.
      hash.destroy();
      hash = createHash('sha256');
      have = 0;
      size = 0;
      resumedFrom = 0;
    }
    if (have > 0 && response.status === 416) {
      // The server has nothing past what we hold: verify it as the whole artifact.
      await response.body?.cancel();
    } else if (!(response.status === 206 && have > 0) && response.status !== 200) {
      await response.body?.cancel();
      // A busy cloud says when to come back: the caller waits that long instead of backing off.
      const retryAfterMs =
        response.status === 503
          ? retryAfterMsOf(response.headers.get('retry-after'), Date.now())
          : undefined;
      throw new LinesightError(
        'ERR_AGENT_DOWNLOAD',
        `download of ${label} from ${req.url} answered HTTP ${response.status}` +
          (retryAfterMs === undefined
            ? ''
            : ` (busy: retry after ${Math.round(retryAfterMs / 1000)} s)`),
        {
          details: {
            status: response.status,
            ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
          },
        },
      );
    } else if (response.body !== null) {
      if (
        response.status === 206 &&
        !(response.headers.get('content-range') ?? '').startsWith(`bytes ${have}-`)
      ) {
        await response.body.cancel();
        throw new LinesightError(
          'ERR_AGENT_DOWNLOAD',
          `download of ${label}: the server resumed at the wrong offset`,
        );
      }
      let file: Awaited<ReturnType<typeof open>> | undefined;
      try {
        const opened = await watch('opening the part file', () =>
          open(part, have > 0 ? 'a' : 'w', 0o600),
        );
        file = opened;
        for await (const chunk of response.body) {
          // The network delivered: the idle timer rests while the disk takes the chunk.
          clearTimeout(idle);
          size += chunk.byteLength;
          if (size > manifest.sizeBytes) {
            await rm(part, { force: true });
            throw new LinesightError(
              'ERR_AGENT_MODEL_VERIFY',
              `artifact of ${label} is larger than the signed size ${manifest.sizeBytes}`,
              { details: { resumedFrom } },
            );
          }
          hash.update(chunk);
          // A write stuck on the disk is the step watch's to report, not a network stall.
          await watch('a write to the part file', () => opened.write(chunk));
          armIdle();
        }
        // The body is complete: what follows is the disk's, not the network's.
        clearTimeout(idle);
        await watch('fsync of the downloaded artifact', () =>
          req.syncFile ? req.syncFile(opened) : opened.sync(),
        );
      } catch (err) {
        if (err instanceof LinesightError) throw err;
        if (isDiskFull(err)) {
          // A part file that filled the disk would keep it full: drop it.
          await rm(part, { force: true });
          throw diskFullError(
            `download of ${label} stopped after ${size} of ${manifest.sizeBytes} bytes`,
            err,
          );
        }
        throw new LinesightError(
          'ERR_AGENT_DOWNLOAD',
          `download of ${label} broke off after ${size} of ${manifest.sizeBytes} bytes; it resumes from there`,
          { cause: err },
        );
      } finally {
        const handle = file;
        if (handle !== undefined) await watch('closing the part file', () => handle.close());
      }
    }
  } finally {
    clearTimeout(idle);
  }
  // The body ended normally (a broken transfer throws above), so a size mismatch means the wrong artifact.
  if (size !== manifest.sizeBytes) {
    await rm(part, { force: true });
    throw new LinesightError(
      'ERR_AGENT_MODEL_VERIFY',
      `artifact of ${label} has ${size} bytes; the signed manifest says ${manifest.sizeBytes}`,
      { details: { resumedFrom } },
    );
  }
  const digest = hash.digest('hex');
  if (digest !== manifest.sha256) {
    await rm(part, { force: true });
    throw new LinesightError(
      'ERR_AGENT_MODEL_VERIFY',
      `artifact of ${label} has sha256 ${digest}; the signed manifest says ${manifest.sha256}${resumedFrom > 0 ? ` (resumed at byte ${resumedFrom})` : ''}`,
      { details: { resumedFrom } },
    );
  }
  await watch('moving the artifact into place (fsync, rename, fsync of the folder)', () =>
    moveIntoPlace(part, req.destPath),
  );
  return { bytes: size, resumedFrom, restarted: false };
}

/**
 * Milliseconds a Retry-After header asks for (delay-seconds or an HTTP-date,
 * RFC 9110 10.2.3), from `nowMs`; undefined when absent or unreadable.
 */
export function retryAfterMsOf(header: string | null, nowMs: number): number | undefined {
  const value = header?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Every HTTP-date form starts with a day name; Date.parse alone takes "1.5" or "-5" as dates.
  const at = /^[A-Za-z]{3}/.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** The wait a busy answer asked for (503 with Retry-After), from a download error; undefined for any other failure. */
export function busyRetryAfterMs(err: unknown): number | undefined {
  if (!isLinesightError(err, 'ERR_AGENT_DOWNLOAD')) return undefined;
  const ms = err.details?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
}

/**
 * Checks that the rest of the artifact plus the margin fits on the disk;
 * returns the bytes of the part file kept. When it does not fit, the part
 * file is dropped (it may be what filled the disk) and, if a fresh start still
 * does not fit, ERR_AGENT_DISK_FULL is thrown.
 */
async function ensureSpace(req: DownloadRequest, part: string, have: number): Promise<number> {
  const probe = req.freeBytes ?? freeBytesAt;
  const marginBytes = req.marginBytes ?? DEFAULT_DISK_MARGIN_BYTES;
  const dir = dirname(req.destPath);
  const { manifest } = req;
  if ((await probe(dir)) >= manifest.sizeBytes - have + marginBytes) return have;
  if (have > 0) await rm(part, { force: true });
  const free = await probe(dir);
  if (free >= manifest.sizeBytes + marginBytes) return 0;
  throw diskFullError(
    `${manifest.name}@${manifest.version} (${formatBytes(manifest.sizeBytes)}) not downloaded: ` +
      `it needs ${formatBytes(manifest.sizeBytes + marginBytes)} free with the margin, ${formatBytes(free)} are`,
  );
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function messageOf(err: unknown): string {
  if (err instanceof Error)
    return err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err.message;
  return String(err);
}
