import { statfs } from 'node:fs/promises';
import { LinesightError } from '@linesight/protocol';

/** Free space kept beyond a download, for state files and the agent's own store (16 MiB). */
export const DEFAULT_DISK_MARGIN_BYTES = 16 * 1024 * 1024;

/** Reports the bytes an unprivileged process may still write on the filesystem holding a folder. */
export type FreeBytesProbe = (dir: string) => Promise<number>;

/** Free bytes on the filesystem holding `dir`, as `df` shows them to a non-root user. */
export const freeBytesAt: FreeBytesProbe = async (dir) => {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
};

/** True when a filesystem call failed because the disk (or the user's quota) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** An ERR_AGENT_DISK_FULL error describing what could not be written. */
export function diskFullError(what: string, cause?: unknown): LinesightError {
  return new LinesightError(
    'ERR_AGENT_DISK_FULL',
    `${what}: the data disk is full; the live model keeps running`,
    cause === undefined ? {} : { cause },
  );
}

/** Renders a byte count for messages (MiB with one decimal above 1 MiB). */
export function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${bytes} bytes`;
}
