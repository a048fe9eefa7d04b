import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import type { SampleRecord } from '@linesight/protocol';
import { tinyOnnx } from '@linesight/testkit/onnx';
import { Cloud } from '../cloud.ts';
import { EdgeDataStore } from '../ingest/edge-data-store.ts';

let dir: string;
let cloud: Cloud;
let api: CloudApiClient;
let edge: EdgeDataStore;
// Captured today, so the /metrics gauges (last 30 days) count them.
const day = new Date().toISOString().slice(0, 10);

function sample(seq: number, cls: SampleRecord['class'], score: number): SampleRecord {
  return {
    boot: 0,
    seq,
    frameSeq: seq,
    at: `${day}T00:00:${String(seq).padStart(2, '0')}.000Z`,
    class: cls,
    modelName: 'tiny',
    modelVersion: '1.0.0',
    score,
    verdict: score >= 0.5 ? 'defect' : 'good',
    objectKey: `samples/line-1/0-${seq}.jpg`,
    mapKey: `samples/line-1/0-${seq}.png`,
    bytes: 3,
    sha256: '0'.repeat(64),
  };
}

async function call(method: string, path: string, body?: unknown, token?: string) {
  const response = await fetch(`${cloud.urls.http}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token ?? cloud.adminToken.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'review-routes-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud') },
    pino({ level: 'silent' }),
  );
  await cloud.start();
  api = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: cloud.adminToken.token });
  await api.publishModel({
    name: 'tiny',
    version: '1.0.0',
    onnx: tinyOnnx({ width: 8, height: 8 }),
  });
  // Samples land as the ingest writes them: rows in the cloud's edge-data file, images in its blob store.
  edge = new EdgeDataStore(join(dir, 'cloud', 'edge-data.sqlite'));
  const records = [
    sample(0, 'random', 0.1),
    sample(1, 'defect', 0.9),
    sample(2, 'uncertain', 0.47),
    sample(3, 'uncertain', 0.52),
  ];
  edge.write([{ kind: 'samples', deviceId: 'line-1', records }]);
  for (const r of records) {
    await cloud.blobs.put(r.objectKey, new Uint8Array([1, 2, r.seq]));
    await cloud.blobs.put(r.mapKey ?? '', new Uint8Array([9, r.seq]));
  }
});

afterAll(async () => {
  edge.close();
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

describe('review routes', () => {
  it('serves the queue in review order with working image and map URLs', async () => {
    const page = await api.reviewQueue();
    expect(page.total).toBe(4);
    expect(page.items.map((i) => i.sample.id)).toEqual(['0-3', '0-2', '0-1', '0-0']);
    expect(page.items[0]).toMatchObject({ threshold: 0.5 });
    expect(page.items[0]?.distance).toBeCloseTo(0.04, 10);
    const image = await fetch(page.items[0]?.imageUrl ?? '');
    expect([...new Uint8Array(await image.arrayBuffer())]).toEqual([1, 2, 3]);
    const map = await fetch(page.items[0]?.mapUrl ?? '');
    expect([...new Uint8Array(await map.arrayBuffer())]).toEqual([9, 3]);
    const filtered = await api.reviewQueue({ reason: 'defect', deviceId: 'line-1', limit: 1 });
    expect(filtered.items.map((i) => i.sample.id)).toEqual(['0-1']);
    const second = await api.reviewQueue({ limit: 2, offset: 2 });
    expect(second.items.map((i) => i.sample.id)).toEqual(['0-1', '0-0']);
  });

  it('answers bad input with 400 ERR_CLOUD_BAD_REQUEST and an unknown sample with 404', async () => {
    const labels = '/v1/review/samples/line-1/0-1/labels';
    for (const [path, body] of [
      [labels, { label: 'maybe' }],
      [labels, { label: 'good', defectClass: 'scratch' }],
      [labels, { label: 'defect', colour: 'red' }],
      [labels, { label: 'defect', note: 'x'.repeat(2001) }],
      [labels, {}],
      ['/v1/review/samples/line-1/zero/labels', { label: 'good' }],
    ] as const) {
      const res = await call('POST', path, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe('ERR_CLOUD_BAD_REQUEST');
      expect(String(res.body.message).length).toBeGreaterThan(0);
    }
    for (const query of [
      'reason=sure',
      'limit=0',
      'labelled=perhaps',
      'from=2026-04-02T00:00:00Z&to=2026-04-01T00:00:00Z',
      'deviceId=../etc',
      // An offset past what SQLite can bind was a 500 (found by the fuzz test).
      'offset=1e%2B308',
    ]) {
      const res = await call('GET', `/v1/review/queue?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error).toBe('ERR_CLOUD_BAD_REQUEST');
    }
    const missing = await call('POST', '/v1/review/samples/line-1/0-99/labels', { label: 'good' });
    expect(missing).toMatchObject({ status: 404, body: { error: 'ERR_CLOUD_NOT_FOUND' } });
    expect((await call('GET', '/v1/review/samples/line-1/0-99/labels')).status).toBe(404);
    expect((await call('GET', '/v1/review/queue', undefined, 'wrong-token')).status).toBe(401);
  });

  it('records who labelled, keeps corrections in the history and counts quality', async () => {
    // A named token's actor is the reviewer unless the request names one.
    const { token } = await api.createToken('ann', 'operator');
    // A viewer may read the queue and the labels but not label.
    const viewer = (await api.createToken('val', 'viewer')).token;
    expect((await call('GET', '/v1/review/queue', undefined, viewer)).status).toBe(200);
    const refused = await call(
      'POST',
      '/v1/review/samples/line-1/0-3/labels',
      { label: 'good' },
      viewer,
    );
    expect(refused).toMatchObject({ status: 403, body: { error: 'ERR_CLOUD_FORBIDDEN' } });
    const asAnn = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken: token });
    const first = await asAnn.labelSample('line-1', '0-3', { label: 'good', note: 'glare' });
    expect(first).toMatchObject({ label: 'good', reviewer: 'ann', actor: 'ann', note: 'glare' });
    const fixed = await api.labelSample('line-1', '0-3', {
      label: 'defect',
      defectClass: 'scratch',
      reviewer: 'bob',
    });
    expect(fixed).toMatchObject({ reviewer: 'bob', actor: 'admin', defectClass: 'scratch' });
    await api.labelSample('line-1', '0-1', { label: 'good' });
    await api.labelSample('line-1', '0-0', { label: 'good' });
    const history = await api.sampleLabels('line-1', '0-3');
    expect(history.history.map((h) => h.label)).toEqual(['good', 'defect']);
    expect(history.current).toEqual(fixed);
    // Labelled samples leave the queue; labelled=true lists them, newest label first.
    expect((await api.reviewQueue()).items.map((i) => i.sample.id)).toEqual(['0-2']);
    const labelled = await api.reviewQueue({ labelled: true });
    expect(labelled.items.map((i) => [i.sample.id, i.label?.label])).toEqual([
      ['0-0', 'good'],
      ['0-1', 'good'],
      ['0-3', 'defect'],
    ]);
    // 0-3: verdict defect (0.52), label defect: TP. 0-1: defect, good: FP. 0-0: good, good: TN.
    const quality = await api.reviewQuality({ model: 'tiny' });
    expect(quality.versions).toHaveLength(1);
    expect(quality.versions[0]?.total).toMatchObject({
      labelled: 3,
      tp: 1,
      fp: 1,
      fn: 0,
      tn: 1,
      precision: 0.5,
      recall: 1,
    });
    expect(quality.versions[0]?.daily.map((d) => d.day)).toEqual([`${day}T00:00:00.000Z`]);
    expect(quality.versions[0]?.devices.map((d) => d.deviceId)).toEqual(['line-1']);
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(metrics).toContain('linesight_review_queue_samples 1\n');
    expect(metrics).toContain(
      'linesight_review_labelled_samples{model="tiny",version="1.0.0"} 3\n',
    );
    expect(metrics).toContain('linesight_review_precision{model="tiny",version="1.0.0"} 0.5\n');
    expect(metrics).toContain('linesight_review_recall{model="tiny",version="1.0.0"} 1\n');
    expect(metrics).toContain(
      'linesight_review_device_precision{model="tiny",version="1.0.0",device="line-1"} 0.5\n',
    );
  });

  it('exports the labelled samples as a dataset manifest with a fingerprint', async () => {
    const before = new Date().toISOString();
    const res = await call('GET', '/v1/review/export?model=tiny&urls=true');
    expect(res.status).toBe(200);
    const manifest = res.body as {
      count: number;
      counts: { good: number; defect: number };
      fingerprint: string;
      items: { sampleId: string; label: string; className: string; imageUrl?: string }[];
    };
    expect(manifest.count).toBe(3);
    expect(manifest.counts).toEqual({ good: 2, defect: 1 });
    expect(manifest.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.items.map((i) => [i.sampleId, i.label, i.className])).toEqual([
      ['0-0', 'good', 'good'],
      ['0-1', 'good', 'good'],
      ['0-3', 'defect', 'scratch'],
    ]);
    const image = await fetch(manifest.items[2]?.imageUrl ?? '');
    expect([...new Uint8Array(await image.arrayBuffer())]).toEqual([1, 2, 3]);
    // A later correction changes the fingerprint; asOf reproduces the earlier export.
    await api.labelSample('line-1', '0-1', { label: 'defect' });
    const after = (await call('GET', '/v1/review/export?model=tiny')).body;
    expect(after.fingerprint).not.toBe(manifest.fingerprint);
    const again = (await call('GET', `/v1/review/export?model=tiny&asOf=${before}`)).body;
    expect(again.fingerprint).toBe(manifest.fingerprint);
    expect((await call('GET', '/v1/review/export?asOf=yesterday')).status).toBe(400);
  });
});
