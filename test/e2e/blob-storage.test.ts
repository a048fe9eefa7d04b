import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { downloadArtifact, requestUploads, uploadObject } from '@linesight/agent';
import { Cloud, type CloudConfigInput } from '@linesight/cloud';
import { startS3TestServer, type S3TestServer } from '@linesight/cloud/testing';
import { eventually } from '@linesight/testkit/eventually';
import { isLinesightError, verifySignedManifest, type SignedManifest } from '@linesight/protocol';

// The storage paths a device uses (artifact download, sample upload) against the cloud with
// its local blob store and with S3 (a real s3rver), through the agent's own client code.

const models = inject('models');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3TestServer('linesight-e2e');
});
afterAll(async () => {
  await s3?.close();
});

describe.each([
  ['local blob store', () => ({})],
  [
    'S3 (s3rver)',
    (): CloudConfigInput => ({
      s3Bucket: s3.bucket,
      s3Endpoint: s3.endpoint,
      s3Region: s3.region,
      s3ForcePathStyle: true,
      s3Credentials: s3.credentials,
    }),
  ],
])('device storage paths with the %s', (_label, storage) => {
  let dir: string;
  let cloud: Cloud;
  let api: CloudApiClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-e2e-blobs-'));
    cloud = new Cloud(
      { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud'), ...storage() },
      pino({ level: process.env.TEST_LOG ?? 'silent' }),
    );
    const urls = await cloud.start();
    api = new CloudApiClient({ baseUrl: urls.http, adminToken: cloud.adminToken.token });
  });
  afterAll(async () => {
    await cloud?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes a model and an agent downloads it (with a resumed range) and verifies it', async () => {
    const onnx = await readFile(models.v1);
    const published = await api.publishModel({ name: 'tile', version: '1.0.0', onnx });
    const blobKey = `models/tile/1.0.0/${sha256(onnx)}.onnx`;
    expect(await cloud.blobs.stat(blobKey)).toMatchObject({ bytes: onnx.length });
    if (cloud.blobs.kind === 's3') expect(cloud.blobs.localPath(blobKey)).toBeUndefined();
    const device = await api.provisionDevice('line-1');
    expect(published.sha256).toBe(sha256(onnx));
    // A device may download only what the cloud assigned it: roll the model out to it.
    await api.createRollout({ model: 'tile', version: '1.0.0', devices: ['line-1'] });
    await eventually(
      async () =>
        (await api.listDevices()).find((d) => d.id === 'line-1')?.desiredModel?.version === '1.0.0'
          ? true
          : undefined,
      { what: 'line-1 assigned tile@1.0.0' },
    );
    const view = (await (
      await fetch(`${cloud.urls.http}/v1/models/tile/1.0.0`, {
        headers: { authorization: `Bearer ${cloud.adminToken.token}` },
      })
    ).json()) as { manifest: SignedManifest };
    const signed = view.manifest;
    verifySignedManifest(signed, device.trustedKeys);
    const destPath = join(dir, 'agent', 'tile-1.0.0.onnx');
    const report = await downloadArtifact({
      url: `${cloud.urls.http}/v1/models/tile/1.0.0/artifact`,
      manifest: signed.manifest,
      username: device.username,
      password: device.password,
      destPath,
      timeoutMs: 10_000,
    });
    expect(report.bytes).toBe(onnx.length);
    expect((await readFile(destPath)).equals(onnx)).toBe(true);
    // A range from the middle: the artifact route reads ranges from the store, S3 included.
    const res = await fetch(`${cloud.urls.http}/v1/models/tile/1.0.0/artifact`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${device.username}:${device.password}`).toString('base64')}`,
        range: 'bytes=100-',
      },
    });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(onnx.subarray(100))).toBe(true);
  });

  it('uploads samples through the agent client, idempotently, and serves them by download URL', async () => {
    const device = await api.provisionDevice('line-2');
    const creds = {
      cloudUrl: cloud.urls.http,
      deviceId: 'line-2',
      username: device.username,
      password: device.password,
      timeoutMs: 10_000,
    };
    const body = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 13) & 0xff));
    const object = {
      name: 'b3f1-0-000123.jpg',
      contentType: 'image/jpeg' as const,
      bytes: body.length,
      sha256: sha256(body),
    };
    const first = await uploadObject({ ...creds, object, body });
    expect(first).toMatchObject({ key: 'samples/line-2/b3f1-0-000123.jpg', alreadyStored: false });
    expect(await cloud.blobs.verify(first.key, object)).toBe('ok');
    const again = await uploadObject({ ...creds, object, body });
    expect(again).toMatchObject({ alreadyStored: true, attempts: 0 });

    const download = await fetch(await cloud.blobs.createDownloadUrl(first.key, 60));
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(body)).toBe(true);

    // Another device's id is refused before any URL is issued.
    const other = await api.provisionDevice('line-3');
    const refused = await requestUploads({
      ...creds,
      username: other.username,
      password: other.password,
      objects: [object],
    }).catch((err: unknown) => err);
    expect(isLinesightError(refused, 'ERR_AGENT_UPLOAD')).toBe(true);
    expect((refused as { details?: unknown }).details).toMatchObject({ status: 403 });

    // A URL for line-2 rewritten to line-3's key is refused by the storage itself.
    const next = { ...object, name: 'b3f1-0-000124.jpg' };
    const [target] = await requestUploads({ ...creds, objects: [next] });
    const forged = target!.url!.replace('line-2', 'line-3');
    const res = await fetch(forged, { method: 'PUT', headers: target!.headers!, body });
    expect(res.status).toBe(403);
    expect(await cloud.blobs.stat('samples/line-3/b3f1-0-000124.jpg')).toBeUndefined();
  });
});
