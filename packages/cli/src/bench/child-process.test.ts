import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { benchChildEnv, terminateChild } from './child-process.ts';

const children: ChildProcess[] = [];

/** A node process running `script`, resolved once it has printed `ready` (its handlers are set). */
async function startNode(script: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line === 'ready') resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready`)));
  });
  return child;
}

afterEach(() => {
  vi.unstubAllEnvs();
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe('terminateChild', () => {
  it('sends SIGTERM first and resolves when the child exits on it, long before the grace', async () => {
    const child = await startNode(
      "process.on('SIGTERM', () => process.exit(3)); setInterval(() => {}, 1000); console.log('ready');",
    );
    // A grace far beyond the test's limit: the test passes only if the exit itself resolves it.
    await terminateChild(child, 3_600_000);
    expect(child.exitCode).toBe(3);
    expect(child.signalCode).toBeNull();
  }, 60_000);

  it('kills a child that ignores SIGTERM with SIGKILL once the grace has passed', async () => {
    const child = await startNode(
      "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('ready');",
    );
    await terminateChild(child, 200);
    expect(child.signalCode).toBe('SIGKILL');
  }, 60_000);

  it('returns at once for a child that has already exited, signalling nothing', async () => {
    const child = spawn(process.execPath, ['-e', 'process.exit(0)'], { stdio: 'ignore' });
    children.push(child);
    await once(child, 'exit');
    const kill = vi.spyOn(child, 'kill');
    await terminateChild(child, 200);
    expect(kill).not.toHaveBeenCalled();
  }, 30_000);
});

describe('benchChildEnv', () => {
  it('drops the inherited NODE_OPTIONS and TSX_DISABLE_CACHE and keeps the rest', async () => {
    // A loader that does not exist: a child that inherited it would fail to start.
    vi.stubEnv('NODE_OPTIONS', '--require /nonexistent/loader.cjs');
    vi.stubEnv('TSX_DISABLE_CACHE', '1');
    vi.stubEnv('LINESIGHT_BENCH_PROBE', 'kept');
    const env = benchChildEnv();
    expect(env.NODE_OPTIONS).toBe('');
    expect('TSX_DISABLE_CACHE' in env).toBe(false);
    expect(env.LINESIGHT_BENCH_PROBE).toBe('kept');
    expect(process.env.NODE_OPTIONS).toBe('--require /nonexistent/loader.cjs');
    expect(process.env.TSX_DISABLE_CACHE).toBe('1');

    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '-e',
        'console.log(JSON.stringify([process.env.NODE_OPTIONS, process.env.TSX_DISABLE_CACHE ?? null, process.env.LINESIGHT_BENCH_PROBE]))',
      ],
      { env },
    );
    expect(JSON.parse(stdout)).toEqual(['', null, 'kept']);
  });

  it('sets TSX_DISABLE_CACHE=1 when asked for a cold tsx cache, whatever was inherited', () => {
    vi.stubEnv('NODE_OPTIONS', '--inspect');
    vi.stubEnv('TSX_DISABLE_CACHE', '0');
    const env = benchChildEnv({ tsxCacheDisabled: true });
    expect(env.TSX_DISABLE_CACHE).toBe('1');
    expect(env.NODE_OPTIONS).toBe('');
    expect(benchChildEnv({ tsxCacheDisabled: false }).TSX_DISABLE_CACHE).toBeUndefined();
  });
});
