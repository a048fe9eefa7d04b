import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LinesightError, type Manifest } from '@linesight/protocol';
import { syncDir } from '../atomic-file.ts';

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
}

/** What a download did, for logs and tests. */
export interface DownloadReport {
  bytes: number;
  /** Bytes already on disk from an earlier, interrupted attempt. */
  resumedFrom: number;
}

/**
 * Downloads an artifact to `destPath` through `<destPath>.part`. An
 * interrupted download leaves the part file, and the next call resumes it
 * with an HTTP Range request (starting over if the server ignores the range).
 * Size and sha256 are checked against the signed manifest before the rename
 * into place, so a partial or altered file is never loaded. Throws
 * ERR_AGENT_DOWNLOAD (worth retrying) or ERR_AGENT_MODEL_VERIFY (not).
 */
export async function downloadArtifact(req: DownloadRequest): Promise<DownloadReport> {
  const { manifest } = req;
  const label = `${manifest.name}@${manifest.version}`;
  const part = `${req.destPath}.part`;
  await mkdir(dirname(req.destPath), { recursive: true });
  let have = await sizeOf(part);
  if (have > manifest.sizeBytes) {
    await rm(part, { force: true });
    have = 0;
  }
  const hash = createHash('sha256');
  if (have > 0) await hashFile(part, hash);

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
  const resumedFrom = have;
  let size = have;
  try {
    let response: Response;
    try {
      response = await fetch(req.url, {
        headers: {
          authorization: `Basic ${Buffer.from(`${req.username}:${req.password}`).toString('base64')}`,
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
    if (have > 0 && response.status === 416) {
      // The server has nothing past what we hold: verify it as the whole artifact.
      await response.body?.cancel();
    } else if (have > 0 && response.status === 200) {
      // The server ignored the range: start over.
      await truncate(part, 0);
      hash.destroy();
      return await downloadArtifact(req);
    } else if (!(response.status === 206 && have > 0) && response.status !== 200) {
      await response.body?.cancel();
      throw new LinesightError(
        'ERR_AGENT_DOWNLOAD',
        `download of ${label} from ${req.url} answered HTTP ${response.status}`,
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
      const file = await open(part, have > 0 ? 'a' : 'w', 0o600);
      try {
        for await (const chunk of response.body) {
          armIdle();
          size += chunk.byteLength;
          if (size > manifest.sizeBytes) {
            await rm(part, { force: true });
            throw new LinesightError(
              'ERR_AGENT_MODEL_VERIFY',
              `artifact of ${label} is larger than the signed size ${manifest.sizeBytes}`,
            );
          }
          hash.update(chunk);
          await file.write(chunk);
        }
        await file.sync();
      } catch (err) {
        if (err instanceof LinesightError) throw err;
        throw new LinesightError(
          'ERR_AGENT_DOWNLOAD',
          `download of ${label} broke off after ${size} of ${manifest.sizeBytes} bytes; it resumes from there`,
          { cause: err },
        );
      } finally {
        await file.close();
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
    );
  }
  const digest = hash.digest('hex');
  if (digest !== manifest.sha256) {
    await rm(part, { force: true });
    throw new LinesightError(
      'ERR_AGENT_MODEL_VERIFY',
      `artifact of ${label} has sha256 ${digest}; the signed manifest says ${manifest.sha256}`,
    );
  }
  await rename(part, req.destPath);
  await syncDir(dirname(req.destPath));
  return { bytes: size, resumedFrom };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function hashFile(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function messageOf(err: unknown): string {
  if (err instanceof Error)
    return err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err.message;
  return String(err);
}
