import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@linesight/protocol';
import { Cloud } from '../cloud.ts';

let dir: string;
let cloud: Cloud;
let admin: Record<string, string>;
let viewer: Record<string, string>;

async function call(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const raw = body instanceof Uint8Array;
  const response = await fetch(`${cloud.urls.http}${path}`, {
    method,
    headers: {
      ...headers,
      ...(body === undefined
        ? {}
        : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }),
    },
    body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-retrain-routes-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: dir, retrain: { minImprovement: 0.05 } },
    pino({ level: 'silent' }),
  );
  await cloud.start();
  admin = { authorization: `Bearer ${cloud.adminToken.token}` };
  const token = await call('POST', '/v1/tokens', admin, { actor: 'watcher', role: 'viewer' });
  viewer = { authorization: `Bearer ${String(token.json.token)}` };
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

describe('retrain routes in the cloud', () => {
  it('fills retrain defaults around what was given', () => {
    expect(cloud.config.retrain).toMatchObject({
      minImprovement: 0.05,
      metric: 'auroc',
      models: [],
      newLabels: 0,
      rollout: { mode: 'none', shadowSec: 3600 },
      training: { epochs: 30, seed: 1 },
    });
  });

  it('lets viewers read and only operators start jobs', async () => {
    expect((await call('GET', '/v1/retrain/jobs', {})).status).toBe(401);
    expect(await call('GET', '/v1/retrain/jobs', viewer)).toEqual({
      status: 200,
      json: { jobs: [] },
    });
    expect((await call('POST', '/v1/retrain/jobs', viewer, { model: 'tile' })).status).toBe(403);
    const unknown = await call('POST', '/v1/retrain/jobs', admin, { model: 'tile' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.message).toMatch(/model tile is not registered/);
    expect((await call('POST', '/v1/retrain/jobs', admin, { model: 'tile', x: 1 })).status).toBe(
      400,
    );
    expect((await call('GET', '/v1/retrain/jobs/nope', viewer)).status).toBe(404);
    expect((await call('POST', '/v1/retrain/jobs/nope/cancel', admin)).status).toBe(404);
    expect((await call('GET', '/v1/retrain/lineage/tile/1.0.0', viewer)).status).toBe(404);
  });

  it('stores training images by content hash and registers datasets of stored images only', async () => {
    const a = Buffer.from('image a');
    const b = Buffer.from('image b');
    const put = (sha: string, bytes: Buffer, who = admin) =>
      call('PUT', `/v1/retrain/datasets/images/${sha}`, who, new Uint8Array(bytes));
    expect((await put(sha256Hex(a), a, viewer)).status).toBe(403);
    expect(await put(sha256Hex(a), a)).toEqual({
      status: 201,
      json: { sha256: sha256Hex(a), stored: true },
    });
    expect((await put(sha256Hex(a), a)).json.stored).toBe(false);
    const wrong = await put(sha256Hex(a), b);
    expect(wrong.status).toBe(400);
    expect(wrong.json.message).toMatch(/hashes to/);
    const items = [
      { sha256: sha256Hex(a), label: 'good', className: 'good' },
      { sha256: sha256Hex(b), label: 'defect', className: 'scratch' },
    ];
    const missing = await call('POST', '/v1/retrain/datasets', admin, { name: 'd', items });
    expect(missing.status).toBe(400);
    expect(missing.json.message).toMatch(/1 image\(s\) of the dataset are not uploaded/);
    expect((await put(sha256Hex(b), b)).status).toBe(201);
    const registered = await call('POST', '/v1/retrain/datasets', admin, { name: 'd', items });
    expect(registered.status).toBe(201);
    // The trainer's formula: sha256 over the sorted "<sha256> <label>" lines.
    const lines = items.map((i) => `${i.sha256} ${i.label}`).sort();
    expect(registered.json).toMatchObject({
      fingerprint: sha256Hex(Buffer.from(lines.join('\n'))),
      count: 2,
      good: 1,
      defect: 1,
      source: 'upload',
      createdBy: 'admin',
    });
    const shown = await call(
      'GET',
      `/v1/retrain/datasets/${String(registered.json.fingerprint)}`,
      viewer,
    );
    expect(shown.json.items).toEqual(items);
    const list = await call('GET', '/v1/retrain/datasets', viewer);
    expect((list.json.datasets as unknown[]).length).toBe(1);
  });

  it('counts jobs in /metrics', async () => {
    const metrics = await (await fetch(`${cloud.urls.http}/metrics`)).text();
    expect(metrics).toContain('linesight_retrain_jobs_total{state="registered"} 0');
    expect(metrics).toContain('linesight_retrain_jobs_active{state="running"} 0');
  });
});
