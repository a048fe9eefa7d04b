import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  deviceTopic,
  encodeEdgeBatch,
  SampleBatchSchema,
  type SampleRecord,
} from '@linesight/protocol';
import type { BlobStore } from '../blobs/blob-store.ts';
import { LocalBlobStore } from '../blobs/local-blob-store.ts';
import { S3BlobStore } from '../blobs/s3-blob-store.ts';
import { startS3TestServer, type S3TestServer } from '../blobs/s3-test-server.ts';
import { EdgeDataStore } from './edge-data-store.ts';
import { EdgeIngest } from './edge-ingest.ts';

const logger = pino({ level: 'silent' });
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const image = (seed: number) =>
  Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * seed) & 0xff));

let dir: string;
let s3: S3TestServer;
const stores: Record<string, () => Promise<BlobStore>> = {
  local: async () => new LocalBlobStore(join(dir, 'blobs')),
  s3: async () => {
    const store = new S3BlobStore({
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    await store.start();
    return store;
  },
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sample-verify-'));
  s3 = await startS3TestServer();
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

function record(seq: number, body: Buffer, key: string, mapKey?: string): SampleRecord {
  return {
    boot: 0,
    seq,
    frameSeq: seq,
    at: '2026-01-01T00:00:00.000Z',
    class: 'defect',
    modelName: 'tile',
    modelVersion: '1.0.0',
    score: 0.9,
    verdict: 'defect',
    objectKey: key,
    ...(mapKey === undefined ? {} : { mapKey }),
    bytes: body.length,
    sha256: sha256(body),
  };
}

describe.each(['local', 's3'])('sample index over a %s blob store', (kind) => {
  it('indexes a sample only when its object is stored as announced; missing and mismatched ones are counted', async () => {
    const blobs = await stores[kind]!();
    const edge = new EdgeDataStore(join(dir, `${kind}-edge.sqlite`));
    try {
      const good = image(3);
      await blobs.put('samples/d1/0-0.jpg', good);
      await blobs.put('samples/d1/0-0-map.png', image(5));
      // Stored bytes that are not the announced ones, one of another size.
      await blobs.put('samples/d1/0-2.jpg', image(7));
      await blobs.put('samples/d1/0-3.jpg', image(7).subarray(0, 100));
      // Another device's object, announced as this device's sample.
      await blobs.put('samples/d2/0-0.jpg', good);
      const ingest = new EdgeIngest({
        mqttUrl: 'mqtt://127.0.0.1:1',
        username: 'x',
        password: 'x',
        store: edge,
        knownDevice: () => true,
        blobs,
        logger,
      });
      const records = [
        record(0, good, 'samples/d1/0-0.jpg', 'samples/d1/0-0-map.png'),
        record(1, good, 'samples/d1/0-1.jpg'),
        record(2, good, 'samples/d1/0-2.jpg'),
        record(3, good, 'samples/d1/0-3.jpg'),
        record(4, good, 'samples/d2/0-0.jpg'),
        record(5, good, 'samples/d1/0-0.jpg', 'samples/d1/0-5-map.png'),
      ];
      const payload = encodeEdgeBatch(
        SampleBatchSchema,
        { schema: 'linesight.samples/v1', deviceId: 'd1', records },
        'samples',
      );
      ingest.handle(deviceTopic('d1', 'samples'), payload);
      // All six outcomes: the good sample's second check (its map) may finish after the five others.
      await vi.waitFor(
        () => {
          ingest.flush();
          const { samplesMissing, samplesMismatch, samplesUnverified, stored } = ingest.stats;
          expect(samplesMissing + samplesMismatch + samplesUnverified + stored).toBe(6);
        },
        { timeout: 20_000, interval: 50 },
      );
      ingest.flush();
      expect(ingest.stats).toMatchObject({
        samplesMissing: 2,
        samplesMismatch: 3,
        samplesUnverified: 0,
        stored: 1,
      });
      expect(edge.samples({ deviceId: 'd1', limit: 100 }).map((s) => s.seq)).toEqual([0]);
      // A resend of the same batch indexes nothing twice.
      ingest.handle(deviceTopic('d1', 'samples'), payload);
      await vi.waitFor(
        () => {
          ingest.flush();
          expect(ingest.stats.duplicates).toBe(1);
        },
        { timeout: 20_000, interval: 50 },
      );
      expect(edge.samples({ deviceId: 'd1', limit: 100 })).toHaveLength(1);
      await ingest.close();
    } finally {
      edge.close();
      await blobs.close();
    }
  });
});
