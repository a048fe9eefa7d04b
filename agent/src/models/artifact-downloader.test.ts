import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type Manifest } from '@linesight/protocol';
import { downloadArtifact } from './artifact-downloader.ts';

const body = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251));
let server: Server;
let base: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-dl-'));
  server = createServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('d1:secret').toString('base64')}`) {
      res.writeHead(401).end();
      return;
    }
    if (req.url === '/ok') res.end(body);
    else if (req.url === '/truncated') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 1000));
      res.destroy();
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

describe('downloadArtifact', () => {
  it('downloads and verifies', async () => {
    const dest = join(dir, 'ok.onnx');
    await downloadArtifact({
      url: `${base}/ok`,
      manifest: manifest(),
      username: 'd1',
      password: 'secret',
      destPath: dest,
      timeoutMs: 5000,
    });
    expect(sha256Hex(await readFile(dest))).toBe(sha256Hex(body));
  });

  it('refuses wrong bytes, a wrong size, a truncated body and a refused login, leaving no file behind', async () => {
    const d = (name: string) => join(dir, 'bad', name);
    const common = { username: 'd1', password: 'secret', timeoutMs: 5000 };
    expect(
      await codeOf(
        downloadArtifact({
          ...common,
          url: `${base}/ok`,
          manifest: manifest({ sha256: 'f'.repeat(64) }),
          destPath: d('a'),
        }),
      ),
    ).toBe('ERR_AGENT_MODEL_VERIFY');
    expect(
      await codeOf(
        downloadArtifact({
          ...common,
          url: `${base}/ok`,
          manifest: manifest({ sizeBytes: 100 }),
          destPath: d('b'),
        }),
      ),
    ).toBe('ERR_AGENT_MODEL_VERIFY');
    expect(
      await codeOf(
        downloadArtifact({
          ...common,
          url: `${base}/ok`,
          manifest: manifest({ sizeBytes: body.length + 1 }),
          destPath: d('c'),
        }),
      ),
    ).toBe('ERR_AGENT_MODEL_VERIFY');
    expect(
      await codeOf(
        downloadArtifact({
          ...common,
          url: `${base}/truncated`,
          manifest: manifest(),
          destPath: d('d'),
        }),
      ),
    ).toBe('ERR_AGENT_DOWNLOAD');
    expect(
      await codeOf(
        downloadArtifact({
          ...common,
          password: 'nope',
          url: `${base}/ok`,
          manifest: manifest(),
          destPath: d('e'),
        }),
      ),
    ).toBe('ERR_AGENT_DOWNLOAD');
    expect(await readdir(join(dir, 'bad'))).toEqual([]);
  });
});
