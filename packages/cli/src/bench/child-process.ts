import type { ChildProcess } from 'node:child_process';

/**
 * The environment of a `linesight` process a benchmark starts: this process's,
 * without the loader flags (NODE_OPTIONS) or tsx cache setting of whatever runs
 * the benchmark (a test runner, a shell with tsx), so every run starts the same
 * way; `tsxCacheDisabled` sets TSX_DISABLE_CACHE=1 for a source bin loaded cold.
 */
export function benchChildEnv(options: { tsxCacheDisabled?: boolean } = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
  delete env.TSX_DISABLE_CACHE;
  if (options.tsxCacheDisabled === true) env.TSX_DISABLE_CACHE = '1';
  return env;
}

/**
 * Stops `child`: SIGTERM, then SIGKILL if it has not exited `graceMs` later;
 * resolves once it has exited (at once when it already had).
 */
export async function terminateChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
