import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud } from '../../cloud.ts';
import { UrlSigner } from '../../blobs/url-signer.ts';

let dir: string;
let cloud: Cloud;
const secrets: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-uploads-'));
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
  await cloud.start();
  for (const id of ['cam-a', 'cam-b']) {
    const res = await fetch(`${cloud.urls.http}/v1/devices`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${cloud.adminToken.token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ id }),
    });
    expect(res.status).toBe(201);
    secrets[id] = ((await res.json()) as { password: string }).password;
  }
});
afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const basic = (id: string) =>
  `Basic ${Buffer.from(`${id}:${secrets[id] ?? ''}`).toString('base64')}`;

interface Upload {
  key: string;
  url?: string;
  method?: string;
  headers?: Record<string, string>;
  expiresAt?: string;
  alreadyStored: boolean;
}

async function ask(asDevice: string, forDevice: string, objects: unknown[]) {
  const res = await fetch(`${cloud.urls.http}/v1/devices/${forDevice}/uploads`, {
    method: 'POST',
    headers: { authorization: basic(asDevice), 'content-type': 'application/json' },
    body: JSON.stringify({ objects }),
  });
  return { status: res.status, body: (await res.json()) as { uploads: Upload[]; error?: string } };
}

function image(seed: number, bytes = 5000): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

const declare = (name: string, body: Buffer, contentType = 'image/jpeg') => ({
  name,
  contentType,
  bytes: body.length,
  sha256: sha256(body),
});

async function put(upload: Upload, body: Uint8Array, url = upload.url ?? '') {
  const res = await fetch(url, {
    method: upload.method ?? 'PUT',
    headers: upload.headers ?? {},
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const blobDir = (...parts: string[]) => join(dir, 'blobs', ...parts);
const tempFiles = async () => readdir(blobDir('.tmp'));

describe('device uploads to the local blob store', () => {
  it('issues a signed URL, stores the upload, and downloads it through a signed URL', async () => {
    const body = image(1);
    const asked = await ask('cam-a', 'cam-a', [declare('b3f1-0-000001.jpg', body)]);
    expect(asked.status).toBe(200);
    const [upload] = asked.body.uploads;
    expect(upload).toMatchObject({
      key: 'samples/cam-a/b3f1-0-000001.jpg',
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      alreadyStored: false,
    });
    const ttlMs = Date.parse(upload!.expiresAt!) - Date.now();
    expect(ttlMs).toBeGreaterThan(14 * 60_000);
    expect(ttlMs).toBeLessThanOrEqual(15 * 60_000);
    expect(upload!.url!.startsWith(`${cloud.urls.http}/v1/blobs/upload?`)).toBe(true);

    const stored = await put(upload!, body);
    expect(stored).toEqual({
      status: 200,
      body: { key: upload!.key, bytes: body.length, sha256: sha256(body) },
    });

    // The blob store the sample index will use sees it, and hands out a download URL.
    const blobs = cloud.blobs;
    expect(await blobs.stat(upload!.key)).toEqual({ bytes: body.length });
    expect(await blobs.verify(upload!.key, { bytes: body.length, sha256: sha256(body) })).toBe(
      'ok',
    );
    const downloadUrl = await blobs.createDownloadUrl(upload!.key, 60);
    const downloaded = await fetch(downloadUrl);
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await downloaded.arrayBuffer()).equals(body)).toBe(true);
    // A download URL for another key, or with an altered key, is refused.
    const altered = downloadUrl.replace('000001', '000002');
    expect((await fetch(altered)).status).toBe(403);
    expect(await tempFiles()).toEqual([]);
  });

  it('answers alreadyStored for an object stored with the same sha256, and a URL for new content', async () => {
    const body = image(2);
    const first = (await ask('cam-a', 'cam-a', [declare('same.jpg', body)])).body.uploads[0]!;
    expect((await put(first, body)).status).toBe(200);
    const again = await ask('cam-a', 'cam-a', [declare('same.jpg', body)]);
    expect(again.body.uploads).toEqual([{ key: 'samples/cam-a/same.jpg', alreadyStored: true }]);
    // A different body under the same name is not "already stored".
    const other = image(3);
    const changed = await ask('cam-a', 'cam-a', [declare('same.jpg', other)]);
    expect(changed.body.uploads[0]).toMatchObject({ alreadyStored: false });
    // A second PUT to a still-valid URL of the same object is harmless.
    expect((await put(first, body)).status).toBe(200);
  });

  it('refuses another device, no credentials, and bad declarations', async () => {
    const body = image(4);
    expect((await ask('cam-b', 'cam-a', [declare('x.jpg', body)])).status).toBe(403);
    const anonymous = await fetch(`${cloud.urls.http}/v1/devices/cam-a/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ objects: [declare('x.jpg', body)] }),
    });
    expect(anonymous.status).toBe(401);
    const bad = [
      [declare('.hidden.jpg', body)],
      [declare('a/b.jpg', body)],
      [declare('x'.repeat(129), body)],
      [declare('x.gif', body, 'image/gif')],
      [{ ...declare('x.jpg', body), sha256: 'ABC' }],
      [{ ...declare('x.jpg', body), bytes: -1 }],
      [declare('dup.jpg', body), declare('dup.jpg', body)],
      Array.from({ length: 101 }, (_, i) => declare(`n${i}.jpg`, body)),
      [],
    ];
    for (const objects of bad) {
      const res = await ask('cam-a', 'cam-a', objects);
      expect(res.status, JSON.stringify(objects[0])).toBe(400);
      expect(res.body.error).toBe('ERR_CLOUD_BAD_REQUEST');
    }
    expect((await ask('cam-a', 'cam-a', [declare('x'.repeat(128), body)])).status).toBe(200);
    const huge = { ...declare('huge.jpg', body), bytes: 33 * 1024 * 1024 };
    const tooLarge = await ask('cam-a', 'cam-a', [huge]);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error).toBe('ERR_CLOUD_PAYLOAD_TOO_LARGE');
  });

  it('refuses tampered URLs: another device key, another size, a forged signature', async () => {
    const body = image(5);
    const upload = (await ask('cam-a', 'cam-a', [declare('t.jpg', body)])).body.uploads[0]!;
    const url = new URL(upload.url!);
    const tamper = (name: string, value: string) => {
      const u = new URL(url);
      u.searchParams.set(name, value);
      return u.toString();
    };
    const cases = [
      tamper('key', 'samples/cam-b/t.jpg'),
      tamper('bytes', String(body.length + 1)),
      tamper('sha256', sha256(image(6))),
      tamper('exp', String(Number(url.searchParams.get('exp')) + 3600)),
      tamper('type', 'image/png'),
      tamper('sig', '0'.repeat(64)),
      tamper('sig', 'not-hex'),
    ];
    for (const forged of cases) {
      const res = await put(upload, body, forged);
      expect(res.status, forged).toBe(403);
      expect(res.body.error).toBe('ERR_CLOUD_FORBIDDEN');
    }
    expect(await readdir(blobDir('samples', 'cam-a'))).not.toContain('t.jpg');
    await expect(readdir(blobDir('samples', 'cam-b'))).rejects.toThrow();
  });

  it('refuses an expired URL', async () => {
    const body = image(7);
    // Signed with the cloud's own key, so only the expiry is wrong.
    const signer = await UrlSigner.open(join(dir, 'blob-url.key'));
    const exp = Math.floor(Date.now() / 1000) - 1;
    const grant = {
      method: 'PUT' as const,
      key: 'samples/cam-a/old.jpg',
      bytes: body.length,
      sha256: sha256(body),
      contentType: 'image/jpeg',
      expiresAtSec: exp,
    };
    const q = new URLSearchParams({
      key: grant.key,
      bytes: String(grant.bytes),
      sha256: grant.sha256,
      type: grant.contentType,
      exp: String(exp),
      sig: signer.sign(grant),
    });
    const res = await put(
      { key: grant.key, headers: { 'content-type': 'image/jpeg' }, alreadyStored: false },
      body,
      `${cloud.urls.http}/v1/blobs/upload?${q.toString()}`,
    );
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('ERR_CLOUD_UPLOAD_EXPIRED');
  });

  it('refuses a body whose size, sha256 or content type differs, and leaves no file', async () => {
    const body = image(8);
    const upload = (await ask('cam-a', 'cam-a', [declare('m.jpg', body)])).body.uploads[0]!;
    const flipped = Buffer.from(body);
    flipped[100] = (flipped[100]! + 1) & 0xff;
    const cases: [Uint8Array, Record<string, string>][] = [
      [body.subarray(0, body.length - 1), upload.headers!],
      [Buffer.concat([body, Buffer.from([0])]), upload.headers!],
      [flipped, upload.headers!],
      [body, { 'content-type': 'image/png' }],
    ];
    for (const [sent, headers] of cases) {
      const res = await put({ ...upload, headers }, sent);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('ERR_CLOUD_UPLOAD_MISMATCH');
    }
    // A body streamed without a length (chunked) that runs past the declared size is cut off.
    const chunked = await fetch(upload.url!, {
      method: 'PUT',
      headers: upload.headers!,
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(body);
          controller.enqueue(body);
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(400);
    expect(await readdir(blobDir('samples', 'cam-a'))).not.toContain('m.jpg');
    expect(await tempFiles()).toEqual([]);
    expect((await put(upload, body)).status).toBe(200);
  });

  /** Local uploads the store refused so far, whatever the reason (from /metrics). */
  async function refusedUploads(): Promise<number> {
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    let sum = 0;
    for (const m of metrics.matchAll(/^linesight_local_uploads_total\{result="(\w+)"\} (\d+)$/gm))
      if (m[1] !== 'stored') sum += Number(m[2]);
    return sum;
  }

  it('leaves no file when the client stops mid-body', async () => {
    const body = image(9, 200_000);
    const upload = (await ask('cam-a', 'cam-a', [declare('cut.jpg', body)])).body.uploads[0]!;
    const closed = new Promise<void>((resolve) => {
      const req = httpRequest(upload.url!, {
        method: 'PUT',
        headers: { ...upload.headers, 'content-length': String(body.length) },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(body.subarray(0, 50_000), () => req.destroy());
    });
    const refusedBefore = await refusedUploads();
    await closed;
    // The client's side closing says nothing of the server's: on a busy machine the
    // server may not even have opened its temp file yet. Wait until it has refused the
    // upload (counted after its clean-up), then look for files.
    const deadline = Date.now() + 30_000;
    while ((await refusedUploads()) === refusedBefore && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await refusedUploads()).toBe(refusedBefore + 1);
    expect(await tempFiles()).toEqual([]);
    expect(await readdir(blobDir('samples', 'cam-a'))).not.toContain('cut.jpg');
    expect((await put(upload, body)).status).toBe(200);
  });

  it('counts issued URLs, already-stored objects and refused uploads in /metrics', async () => {
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    const value = (line: string) =>
      Number(new RegExp(`^${line.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(metrics)?.[1]);
    expect(value('linesight_upload_urls_total{outcome="issued"}')).toBeGreaterThan(5);
    expect(value('linesight_upload_urls_total{outcome="already_stored"}')).toBe(1);
    expect(value('linesight_local_uploads_total{result="stored"}')).toBeGreaterThan(3);
    expect(value('linesight_local_uploads_total{result="forbidden"}')).toBe(7);
    expect(value('linesight_local_uploads_total{result="expired"}')).toBe(1);
    expect(value('linesight_local_uploads_total{result="mismatch"}')).toBeGreaterThanOrEqual(5);
    expect(value('linesight_model_uploads_in_progress')).toBe(0);
  });
});
