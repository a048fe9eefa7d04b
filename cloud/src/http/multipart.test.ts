import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud } from '../cloud.ts';
import { meanScoreOnnx } from '@linesight/testkit/onnx';

let dir: string;
let cloud: Cloud;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-multipart-'));
  cloud = new Cloud(
    {
      httpPort: 0,
      mqttPort: 0,
      dataDir: dir,
      maxModelBytes: 64 * 1024,
      maxPredictBytes: 16 * 1024,
    },
    pino({ level: 'silent' }),
  );
  await cloud.start();
});
afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

async function send(path: string, contentType: string, body: string | Uint8Array) {
  const res = await fetch(`${cloud.urls.http}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cloud.adminToken.token}`, 'content-type': contentType },
    body,
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as { error?: string; message?: string },
  };
}

const B = 'XyZzY';
const field = (name: string, value: string) =>
  `--${B}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const file = (name: string, content: string) =>
  `--${B}\r\ncontent-disposition: form-data; name="${name}"; filename="f.bin"\r\ncontent-type: application/octet-stream\r\n\r\n${content}\r\n`;
const end = `--${B}--\r\n`;

describe.each(['/v1/models', '/v1/predict'])('multipart edge cases on %s', (path) => {
  const cases: [string, string, string][] = [
    ['no boundary', 'multipart/form-data', field('name', 'x') + end],
    ['an empty boundary', 'multipart/form-data; boundary=', field('name', 'x') + end],
    [
      'too many fields',
      `multipart/form-data; boundary=${B}`,
      Array.from({ length: 40 }, (_, i) => field(`f${i}`, 'v')).join('') + end,
    ],
    [
      'two files',
      `multipart/form-data; boundary=${B}`,
      field('name', 'm') + field('version', '1.0.0') + file('file', 'a') + file('file2', 'b') + end,
    ],
    [
      'a body cut off inside a part',
      `multipart/form-data; boundary=${B}`,
      field('name', 'm') +
        `--${B}\r\ncontent-disposition: form-data; name="file"; filename="f"\r\n\r\nabc`,
    ],
    ['no parts at all', `multipart/form-data; boundary=${B}`, end],
    ['garbage', `multipart/form-data; boundary=${B}`, 'this is not multipart at all'],
    ['a __proto__ field', `multipart/form-data; boundary=${B}`, field('__proto__', 'x') + end],
  ];
  it.each(cases)('answers 400 with a message for %s', async (_label, contentType, body) => {
    const res = await send(path, contentType, body);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error).toBe('ERR_CLOUD_BAD_REQUEST');
    expect(res.body.message).toMatch(/\w{3,}/);
  });

  it('answers 413 for a file over the limit', async () => {
    const big = 'x'.repeat(70 * 1024);
    const res = await send(
      path,
      `multipart/form-data; boundary=${B}`,
      field('name', 'm') + field('version', '1.0.0') + file('file', big) + end,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(413);
    expect(res.body.error).toBe('ERR_CLOUD_PAYLOAD_TOO_LARGE');
  });
});

describe('model upload streaming', () => {
  it('leaves no temp file after refused uploads, and registers a good one', async () => {
    const tmp = join(dir, 'blobs', '.tmp');
    expect(await readdir(tmp)).toEqual([]);
    const onnx = meanScoreOnnx({ side: 16, threshold: 0.5 });
    const form = (version: string, bytes: Uint8Array) => {
      const f = new FormData();
      f.set('name', 'm');
      f.set('version', version);
      f.set('file', new Blob([bytes]), 'm.onnx');
      return f;
    };
    const post = async (f: FormData) =>
      (
        await fetch(`${cloud.urls.http}/v1/models`, {
          method: 'POST',
          headers: { authorization: `Bearer ${cloud.adminToken.token}` },
          body: f,
        })
      ).status;
    expect(await post(form('1.0.0', Buffer.from('not an onnx model')))).toBe(400);
    expect(await post(form('not-semver', onnx))).toBe(400);
    expect(await post(form('1.0.0', onnx))).toBe(201);
    expect(await post(form('1.0.0', onnx))).toBe(409);
    expect(await readdir(tmp)).toEqual([]);
    expect(await readdir(join(dir, 'blobs', 'models', 'm'))).toEqual(['1.0.0']);
  });

  it('keeps only the winner when the same version is uploaded concurrently', async () => {
    const post = (bytes: Uint8Array) => {
      const f = new FormData();
      f.set('name', 'race');
      f.set('version', '1.0.0');
      f.set('file', new Blob([bytes]), 'm.onnx');
      return fetch(`${cloud.urls.http}/v1/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cloud.adminToken.token}` },
        body: f,
      }).then((r) => r.status);
    };
    const statuses = await Promise.all([
      post(meanScoreOnnx({ side: 16, threshold: 0.4 })),
      post(meanScoreOnnx({ side: 16, threshold: 0.6 })),
    ]);
    expect(statuses.sort()).toEqual([201, 409]);
    expect(await readdir(join(dir, 'blobs', 'models', 'race', '1.0.0'))).toHaveLength(1);
    expect(await readdir(join(dir, 'blobs', '.tmp'))).toEqual([]);
  });

  it('refuses uploads past the concurrency limit with 503 and frees slots of aborted uploads', async () => {
    // Two uploads that send their headers and first bytes, then stall.
    const stalled = [0, 1].map(() => {
      const controller = new AbortController();
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(
            Buffer.from(
              field('name', 'slow') +
                field('version', '1.0.0') +
                `--${B}\r\ncontent-disposition: form-data; name="file"; filename="m.onnx"\r\n\r\n`,
            ),
          );
        },
      });
      const done = fetch(`${cloud.urls.http}/v1/models`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${cloud.adminToken.token}`,
          'content-type': `multipart/form-data; boundary=${B}`,
        },
        body,
        duplex: 'half',
        signal: controller.signal,
      } as RequestInit).catch(() => 'aborted');
      return { controller, done };
    });
    const probe = () =>
      send(
        '/v1/models',
        `multipart/form-data; boundary=${B}`,
        field('name', 'p') + field('version', '1.0.0') + file('file', 'junk') + end,
      );
    // Poll until both stalled uploads hold their slots (no fixed wait).
    const deadline = Date.now() + 20_000;
    let last = await probe();
    while (last.status !== 503 && Date.now() < deadline) last = await probe();
    expect(last.status).toBe(503);
    expect(last.body.error).toBe('ERR_CLOUD_BUSY');
    // Back-pressure, not a failure: the client is told when to try again.
    expect(Number(last.retryAfter)).toBeGreaterThan(0);
    // Aborting the clients mid-upload frees the slots and removes their temp files.
    for (const s of stalled) s.controller.abort();
    await Promise.all(stalled.map((s) => s.done));
    let after = await probe();
    while (after.status === 503 && Date.now() < deadline) after = await probe();
    expect(after.status).toBe(400);
    const tmpDeadline = Date.now() + 10_000;
    while ((await readdir(join(dir, 'blobs', '.tmp'))).length > 0 && Date.now() < tmpDeadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await readdir(join(dir, 'blobs', '.tmp'))).toEqual([]);
  });
});
