// A real size-limited disk for tests: a tmpfs mounted on a folder (root only).
import { execFileSync } from 'node:child_process';

/** A mounted tmpfs; `unmount()` is idempotent. */
export interface Tmpfs {
  readonly dir: string;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `sizeBytes` on `dir` (which must exist) and returns it, or
 * undefined when this process may not mount (not root, or mount refused): callers
 * say so and skip what needs a real full disk.
 */
export function mountTmpfs(dir: string, sizeBytes: number): Tmpfs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], {
      stdio: 'ignore',
    });
  } catch {
    return undefined;
  }
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      execFileSync('umount', [dir], { stdio: 'ignore' });
    },
  };
}
