import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type Manifest } from '@linesight/protocol';
import { downloadArtifact } from './artifact-downloader.ts';
import type { SlowStep } from './step-watch.ts';

const body = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251));
/** The same length with one byte changed near the end: what a tampered mirror serves. */
const tampered = Buffer.from(body);
tampered[body.length - 10] = (tampered[body.length - 10]! + 1) % 256;
let server: Server;
let base: string;
let dir: string;
const ranges: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-dl-'));
  server = createServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('d1:secret').toString('base64')}`) {
      res.writeHead(401).end();
      return;
    }
    ranges.push(req.headers.range ?? '');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const served = req.url === '/tampered' ? tampered : body;
    if ((req.url === '/ok' || req.url === '/tampered') && range) {
      const start = Number(range[1]);
      res.writeHead(206, {
        'content-range': `bytes ${start}-${served.length - 1}/${served.length}`,
        'content-length': served.length - start,
      });
      res.end(served.subarray(start));
    } else if (req.url === '/ok' || req.url === '/no-ranges' || req.url === '/tampered')
      res.end(served);
    else if (req.url === '/truncated') {
      res.writeHead(200, { 'content-length': body.length });
      // Send a part, let it reach the client, then break the connection.
      res.write(body.subarray(0, 1000), () => setTimeout(() => res.destroy(), 50));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const manifest = (overrides: Partial<Manifest> = {}) =>
  ({
    name: 'm',
    version: '1.0.0',
    sha256: sha256Hex(body),
    sizeBytes: body.length,
    ...overrides,
  }) as Manifest;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

/** Downloads `path` of the test server to `destPath` as device d1, the manifest of `body` unless `options` say otherwise. */
function download(
  path: string,
  destPath: string,
  options: Partial<Parameters<typeof downloadArtifact>[0]> = {},
) {
  return downloadArtifact({
    url: `${base}${path}`,
    manifest: manifest(),
    username: 'd1',
    password: 'secret',
    destPath,
    timeoutMs: 5000,
    ...options,
  });
}

describe('downloadArtifact', () => {
  it('downloads and verifies', async () => {
    const dest = join(dir, 'ok.onnx');
    await download('/ok', dest);
    expect(sha256Hex(await readFile(dest))).toBe(sha256Hex(body));
  });

  it('refuses wrong bytes, a wrong size and a refused login, leaving no file behind', async () => {
    const d = (name: string) => join(dir, 'bad', name);
    expect(
      await codeOf(download('/ok', d('a'), { manifest: manifest({ sha256: 'f'.repeat(64) }) })),
    ).toBe('ERR_AGENT_MODEL_VERIFY');
    expect(await codeOf(download('/ok', d('b'), { manifest: manifest({ sizeBytes: 100 }) }))).toBe(
      'ERR_AGENT_MODEL_VERIFY',
    );
    expect(
      await codeOf(download('/ok', d('c'), { manifest: manifest({ sizeBytes: body.length + 1 }) })),
    ).toBe('ERR_AGENT_MODEL_VERIFY');
    expect(await codeOf(download('/ok', d('e'), { password: 'nope' }))).toBe('ERR_AGENT_DOWNLOAD');
    expect(await readdir(join(dir, 'bad'))).toEqual([]);
  });

  it('resumes a broken download with a Range request and never exposes the partial file', async () => {
    const dest = join(dir, 'resume', 'm.onnx');
    expect(await codeOf(download('/truncated', dest))).toBe('ERR_AGENT_DOWNLOAD');
    expect(await readdir(join(dir, 'resume'))).toEqual(['m.onnx.part']);
    ranges.length = 0;
    const report = await download('/ok', dest);
    expect(report.resumedFrom).toBeGreaterThan(0);
    expect(ranges).toEqual([`bytes=${report.resumedFrom}-`]);
    expect(sha256Hex(await readFile(dest))).toBe(sha256Hex(body));
    expect(await readdir(join(dir, 'resume'))).toEqual(['m.onnx']);
  });

  it('starts over when the server ignores the range', async () => {
    const dest = join(dir, 'norange', 'm.onnx');
    expect(await codeOf(download('/truncated', dest))).toBe('ERR_AGENT_DOWNLOAD');
    await download('/no-ranges', dest);
    expect(sha256Hex(await readFile(dest))).toBe(sha256Hex(body));
  });

  it('discards a corrupted partial file and downloads once more from zero', async () => {
    const dest = join(dir, 'corrupt', 'm.onnx');
    await mkdir(join(dir, 'corrupt'));
    // Power loss left a part file whose tail is zeros instead of the bytes received.
    const part = Buffer.from(body.subarray(0, 20_000));
    part.fill(0, 10_000);
    await writeFile(`${dest}.part`, part);
    ranges.length = 0;
    const report = await download('/ok', dest);
    expect(report).toMatchObject({ resumedFrom: 0, restarted: true, bytes: body.length });
    expect(ranges).toEqual(['bytes=20000-', '']);
    expect(sha256Hex(await readFile(dest))).toBe(sha256Hex(body));
    expect(await readdir(join(dir, 'corrupt'))).toEqual(['m.onnx']);
  });

  it('refuses wrong bytes after that one fresh download, leaving no file behind', async () => {
    const dest = join(dir, 'tampered', 'm.onnx');
    await mkdir(join(dir, 'tampered'));
    await writeFile(`${dest}.part`, body.subarray(0, 20_000));
    ranges.length = 0;
    const result = download('/tampered', dest);
    expect(await codeOf(result)).toBe('ERR_AGENT_MODEL_VERIFY');
    expect(ranges).toEqual(['bytes=20000-', '']);
    expect(await readdir(join(dir, 'tampered'))).toEqual([]);
  });

  it('refuses to start a download that does not fit on the disk with its margin', async () => {
    const dest = join(dir, 'full', 'm.onnx');
    await mkdir(join(dir, 'full'));
    await writeFile(`${dest}.part`, body.subarray(0, 20_000));
    ranges.length = 0;
    const result = download('/ok', dest, { marginBytes: 1000, freeBytes: async () => 20_000 });
    expect(await codeOf(result)).toBe('ERR_AGENT_DISK_FULL');
    expect(ranges).toEqual([]);
    // The part file is dropped: it may be what filled the disk.
    expect(await readdir(join(dir, 'full'))).toEqual([]);
  });
});

describe('downloadArtifact on a slow disk', () => {
  it('says when the final fsync waits beyond the limit, again each limit, and when it ends', async () => {
    const destPath = join(dir, 'slow-sync', 'a.onnx');
    const seen: SlowStep[] = [];
    let release: () => void = () => undefined;
    const disk = new Promise<void>((resolve) => (release = resolve));
    const report = await downloadArtifact({
      url: `${base}/ok`,
      manifest: manifest(),
      username: 'd1',
      password: 'secret',
      destPath,
      timeoutMs: 30_000,
      stepLimitMs: 20,
      // An fsync held by a busy disk: it ends only after the second "still waiting".
      syncFile: async (file) => {
        await disk;
        await file.sync();
      },
      onSlowStep: (slow) => {
        seen.push(slow);
        if (seen.filter((s) => !s.done).length === 2) release();
      },
    });
    expect(report.bytes).toBe(body.length);
    expect(await readFile(destPath)).toEqual(body);
    const fsync = seen.filter((s) => s.step === 'fsync of the downloaded artifact of m@1.0.0');
    expect(fsync.map((s) => s.done)).toEqual([false, false, true]);
    expect(fsync[0]!.limitMs).toBe(20);
    expect(fsync[0]!.waitedMs).toBeGreaterThanOrEqual(20);
    expect(fsync[2]!.waitedMs).toBeGreaterThanOrEqual(fsync[1]!.waitedMs);
  });
});
