import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
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
  timeoutMs: number;
}

/**
 * Downloads an artifact to `destPath`, writing to a temp file, hashing on the
 * fly and enforcing the manifest's size; renames into place only when size
 * and sha256 match. Throws ERR_AGENT_DOWNLOAD or ERR_AGENT_MODEL_VERIFY.
 */
export async function downloadArtifact(req: DownloadRequest): Promise<void> {
  const { manifest } = req;
  const label = `${manifest.name}@${manifest.version}`;
  let response: Response;
  try {
    response = await fetch(req.url, {
      headers: {
        authorization: `Basic ${Buffer.from(`${req.username}:${req.password}`).toString('base64')}`,
      },
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (cause) {
    throw new LinesightError('ERR_AGENT_DOWNLOAD', `download of ${label} from ${req.url} failed`, {
      cause,
    });
  }
  if (!response.ok || response.body === null) {
    throw new LinesightError(
      'ERR_AGENT_DOWNLOAD',
      `download of ${label} from ${req.url} answered HTTP ${response.status}`,
    );
  }
  await mkdir(dirname(req.destPath), { recursive: true });
  const tmp = `${req.destPath}.part`;
  const file = await open(tmp, 'w', 0o600);
  const hash = createHash('sha256');
  let size = 0;
  try {
    try {
      for await (const chunk of response.body) {
        size += chunk.byteLength;
        if (size > manifest.sizeBytes) {
          throw new LinesightError(
            'ERR_AGENT_MODEL_VERIFY',
            `artifact of ${label} is larger than the signed size ${manifest.sizeBytes}`,
          );
        }
        hash.update(chunk);
        await file.write(chunk);
      }
      await file.sync();
    } finally {
      await file.close();
    }
    if (size !== manifest.sizeBytes) {
      throw new LinesightError(
        'ERR_AGENT_MODEL_VERIFY',
        `artifact of ${label} has ${size} bytes; the signed manifest says ${manifest.sizeBytes}`,
      );
    }
    const digest = hash.digest('hex');
    if (digest !== manifest.sha256) {
      throw new LinesightError(
        'ERR_AGENT_MODEL_VERIFY',
        `artifact of ${label} has sha256 ${digest}; the signed manifest says ${manifest.sha256}`,
      );
    }
    await rename(tmp, req.destPath);
    await syncDir(dirname(req.destPath));
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof LinesightError) throw err;
    throw new LinesightError(
      'ERR_AGENT_DOWNLOAD',
      `download of ${label} broke off after ${size} bytes`,
      { cause: err },
    );
  }
}
