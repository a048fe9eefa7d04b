import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CloudApiClient } from '@linesight/api-client';
import { downloadArtifact, requestUploads, uploadObject } from '@linesight/agent';
import { startS3TestServer, type S3TestServer } from '@linesight/cloud/testing';
import { verifySignedManifest, type SignedManifest } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { startCloudProcess } from '../helpers/cloud-process.ts';
import type { LinesightProcess } from '../helpers/linesight-process.ts';

// `linesight cloud` as its own process with --s3-* flags and credentials from the standard
// AWS variables, s3rver as another: a device's artifact download and sample upload go
// across real sockets between three processes.

const models = inject('models');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ADMIN_TOKEN = 'storage-e2e-admin-token-0123456789';

let s3: S3TestServer;
let dir: string;
let cloud: LinesightProcess;
let httpUrl: string;
let api: CloudApiClient;

beforeAll(async () => {
  s3 = await startS3TestServer('linesight-cli');
  dir = await mkdtemp(join(tmpdir(), 'linesight-e2e-storage-'));
  const started = await startCloudProcess({
    dataDir: join(dir, 'cloud'),
    adminToken: ADMIN_TOKEN,
    s3: { server: s3 },
    readyTimeoutMs: 60_000,
  });
  expect(started.ready.blobStore).toBe('s3');
  ({ process: cloud, httpUrl, api } = started);
});
afterAll(async () => {
  await cloud?.stop();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('linesight cloud with --s3-bucket', () => {
  it('keeps artifacts in the bucket and serves them to a device', async () => {
    const onnx = await readFile(models.v1);
    await api.publishModel({ name: 'tile', version: '2.0.0', onnx });
    // The object is in the bucket (read straight from s3rver), not in the data dir.
    const direct = await fetch(
      `${s3.endpoint}/${s3.bucket}/models/tile/2.0.0/${sha256(onnx)}.onnx`,
    );
    expect(direct.status).toBe(200);
    expect(Buffer.from(await direct.arrayBuffer()).equals(onnx)).toBe(true);

    const device = await api.provisionDevice('s3-line-1');
    // A device may download only what the cloud assigned it: roll the model out to it.
    await api.createRollout({ model: 'tile', version: '2.0.0', devices: ['s3-line-1'] });
    await eventually(
      async () =>
        (await api.listDevices()).find((d) => d.id === 's3-line-1')?.desiredModel?.version ===
        '2.0.0'
          ? true
          : undefined,
      { what: 's3-line-1 assigned tile@2.0.0' },
    );
    const view = (await (
      await fetch(`${httpUrl}/v1/models/tile/2.0.0`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).json()) as { manifest: SignedManifest };
    const manifest = verifySignedManifest(view.manifest, device.trustedKeys);
    const destPath = join(dir, 'agent', 'tile.onnx');
    await downloadArtifact({
      url: `${httpUrl}/v1/models/tile/2.0.0/artifact`,
      manifest,
      username: device.username,
      password: device.password,
      destPath,
      timeoutMs: 10_000,
    });
    expect((await readFile(destPath)).equals(onnx)).toBe(true);
  });

  it('presigns device uploads to the bucket and refuses other devices and altered URLs', async () => {
    const device = await api.provisionDevice('s3-line-2');
    const creds = {
      cloudUrl: httpUrl,
      deviceId: 's3-line-2',
      username: device.username,
      password: device.password,
      timeoutMs: 10_000,
    };
    const body = Buffer.from(Array.from({ length: 30_000 }, (_, i) => (i * 7) & 0xff));
    const object = {
      name: 'f-000001.jpg',
      contentType: 'image/jpeg' as const,
      bytes: body.length,
      sha256: sha256(body),
    };
    const report = await uploadObject({ ...creds, object, body });
    expect(report).toMatchObject({ key: 'samples/s3-line-2/f-000001.jpg', alreadyStored: false });
    const stored = await fetch(`${s3.endpoint}/${s3.bucket}/${report.key}`);
    expect(Buffer.from(await stored.arrayBuffer()).equals(body)).toBe(true);
    expect(await uploadObject({ ...creds, object, body })).toMatchObject({ alreadyStored: true });

    const other = await api.provisionDevice('s3-line-3');
    await expect(
      requestUploads({
        ...creds,
        username: other.username,
        password: other.password,
        objects: [object],
      }),
    ).rejects.toMatchObject({ code: 'ERR_AGENT_UPLOAD', details: { status: 403 } });

    const [target] = await requestUploads({
      ...creds,
      objects: [{ ...object, name: 'f-000002.jpg' }],
    });
    expect(target!.url!.startsWith(`${s3.endpoint}/${s3.bucket}/samples/s3-line-2/`)).toBe(true);
    const forged = await fetch(target!.url!.replace('s3-line-2', 's3-line-3'), {
      method: 'PUT',
      headers: target!.headers!,
      body,
    });
    expect(forged.status).toBe(403);
    const absent = await fetch(`${s3.endpoint}/${s3.bucket}/samples/s3-line-3/f-000002.jpg`);
    expect(absent.status).toBe(404);
  });
});
