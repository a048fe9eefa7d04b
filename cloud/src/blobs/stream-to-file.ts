import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { LinesightError } from '@linesight/protocol';

/** What was written. */
export interface WrittenFile {
  bytes: number;
  /** Hex sha256 of the bytes written. */
  sha256: string;
}

/**
 * Streams `body` into a new file at `path` (mode 0600), hashing as it goes and
 * fsyncing at the end; at most `maxBytes` are accepted (ERR_CLOUD_PAYLOAD_TOO_LARGE
 * past that, `tooLarge` may say more). The file is removed on every failure.
 * Memory stays at one chunk: nothing is buffered beyond the stream's own.
 */
export async function streamToFile(
  body: AsyncIterable<Uint8Array> | Readable,
  path: string,
  maxBytes: number,
  tooLarge: () => LinesightError = () =>
    new LinesightError('ERR_CLOUD_PAYLOAD_TOO_LARGE', `body is larger than ${maxBytes} bytes`),
): Promise<WrittenFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await open(path, 'wx', 0o600);
  try {
    try {
      for await (const chunk of body) {
        bytes += chunk.byteLength;
        if (bytes > maxBytes) throw tooLarge();
        hash.update(chunk);
        await handle.write(chunk);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
  return { bytes, sha256: hash.digest('hex') };
}
