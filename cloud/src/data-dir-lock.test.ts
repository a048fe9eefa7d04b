import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { Cloud } from './cloud.ts';
import { DataDirLock } from './data-dir-lock.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-lock-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isLinesightError(err) ? err.code : String(err);
  }
  return undefined;
}

describe('one cloud per data directory', () => {
  it('refuses a second cloud on the same folder, naming the first, and frees it on close', async () => {
    const dataDir = join(dir, 'shared');
    const first = new Cloud({ httpPort: 0, mqttPort: 0, dataDir }, pino({ level: 'silent' }));
    await first.start();
    const second = new Cloud({ httpPort: 0, mqttPort: 0, dataDir }, pino({ level: 'silent' }));
    let refused: unknown;
    try {
      await second.start();
    } catch (err) {
      refused = err;
    }
    expect(isLinesightError(refused) && refused.code).toBe('ERR_CLOUD_DATA_DIR_IN_USE');
    expect(String((refused as Error).message)).toContain(`process ${process.pid}`);
    // The refused one touched nothing: the first still serves.
    const health = await fetch(`${first.urls.http}/healthz`);
    expect(health.status).toBe(200);
    await first.close();
    const third = new Cloud({ httpPort: 0, mqttPort: 0, dataDir }, pino({ level: 'silent' }));
    await third.start();
    await third.close();
  });

  it('is free again after its holder is killed with SIGKILL, with nothing to clean up', async () => {
    const dataDir = join(dir, 'killed');
    // A child process takes the lock and says so, then waits to be killed.
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { DataDirLock } = await import(${JSON.stringify(new URL('./data-dir-lock.ts', import.meta.url).pathname)});
         DataDirLock.acquire(${JSON.stringify(dataDir)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
      child.once('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
    });
    expect(codeOf(() => DataDirLock.acquire(dataDir, { waitMs: 0 }))).toBe(
      'ERR_CLOUD_DATA_DIR_IN_USE',
    );
    const holder = JSON.parse(await readFile(join(dataDir, 'cloud.lock.json'), 'utf8')) as {
      pid: number;
    };
    expect(holder.pid).toBe(child.pid);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const lock = DataDirLock.acquire(dataDir, { waitMs: 0 });
    lock.release();
    lock.release();
  });
});
