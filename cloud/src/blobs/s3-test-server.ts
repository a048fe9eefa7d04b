import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A real S3-compatible server for tests (s3rver), on 127.0.0.1 and a free port. */
export interface S3TestServer {
  endpoint: string;
  bucket: string;
  region: string;
  /** s3rver's fixed test account. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Stops the server and removes its folder; idempotent. */
  close(): Promise<void>;
}

const CHILD = fileURLToPath(new URL('./s3rver-child.mjs', import.meta.url));

/**
 * Starts @20minutes/s3rver (checks SigV4 signatures and presigned expiry) in
 * a child process with `--openssl-legacy-provider`, which its ListObjectsV2
 * continuation tokens (DES) need on Node 20; the flag stays inside this helper.
 * Test-only: never imported by runtime code.
 */
export async function startS3TestServer(bucket = 'linesight-test'): Promise<S3TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, dir, bucket], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // Only what the server needs: no NODE_OPTIONS from the test runner (its loaders and flags).
    env: { PATH: process.env.PATH ?? '' },
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  let port: number;
  try {
    port = await readPort(child, () => stderr);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

function readPort(child: ChildProcess, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => fail(new Error('s3rver did not start within 30 s')), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      lines.close();
      reject(new Error(`${err.message}\n${stderr()}`));
    };
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`s3rver exited with ${code}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const port = (JSON.parse(line) as { port?: unknown }).port;
      if (typeof port === 'number') resolve(port);
      else reject(new Error(`s3rver printed ${line}`));
    });
  });
}
