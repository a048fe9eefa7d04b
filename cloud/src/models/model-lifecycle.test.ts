import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud } from '../cloud.ts';
import { meanScoreOnnx } from '@linesight/testkit/onnx';

let dir: string;
let cloud: Cloud;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-lifecycle-'));
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
  await cloud.start();
});
afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

async function call(token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${cloud.urls.http}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body instanceof FormData || body === undefined
        ? {}
        : { 'content-type': 'application/json' }),
    },
    body: body instanceof FormData ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('model lifecycle, approvals and audit', () => {
  it('needs a second actor to approve production, and records everything', async () => {
    const admin = cloud.adminToken.token;
    const alice = (await call(admin, 'POST', '/v1/tokens', { actor: 'alice' })).body
      .token as string;
    const bob = (await call(admin, 'POST', '/v1/tokens', { actor: 'bob' })).body.token as string;
    expect((await call(alice, 'POST', '/v1/tokens', { actor: 'carol' })).status).toBe(403);

    const upload = (version: string, parent?: string) => {
      const form = new FormData();
      form.set('name', 'tile');
      form.set('version', version);
      if (parent) form.set('parent', parent);
      form.set('file', new Blob([meanScoreOnnx({ side: 16, threshold: 0.5 })]), 'm.onnx');
      return form;
    };
    const registered = await call(alice, 'POST', '/v1/models', upload('1.0.0'));
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    expect(registered.body).toMatchObject({ stage: 'candidate', parentVersion: null });
    expect((await call(alice, 'POST', '/v1/models', upload('1.1.0', '0.9.0'))).status).toBe(400);

    expect(
      (await call(alice, 'POST', '/v1/models/tile/1.0.0/stage', { stage: 'staging' })).body,
    ).toMatchObject({ stage: 'staging' });
    const early = await call(alice, 'POST', '/v1/models/tile/1.0.0/stage', { stage: 'production' });
    expect(early.status).toBe(403);
    expect(early.body.message).toMatch(/approval/);
    expect((await call(alice, 'POST', '/v1/models/tile/1.0.0/approve')).status).toBe(403);
    expect((await call(bob, 'POST', '/v1/models/tile/1.0.0/approve')).body).toMatchObject({
      approvedBy: 'bob',
    });
    expect(
      (await call(alice, 'POST', '/v1/models/tile/1.0.0/stage', { stage: 'production' })).body,
    ).toMatchObject({ stage: 'production' });
    expect(
      (await call(alice, 'POST', '/v1/models/tile/1.0.0/stage', { stage: 'bogus' })).status,
    ).toBe(400);

    // A child version keeps its lineage; promoting it archives the previous production version.
    expect((await call(alice, 'POST', '/v1/models', upload('1.1.0', '1.0.0'))).body).toMatchObject({
      parentVersion: '1.0.0',
    });
    await call(admin, 'POST', '/v1/models/tile/1.1.0/approve');
    await call(bob, 'POST', '/v1/models/tile/1.1.0/stage', { stage: 'production' });
    const list = (await fetch(`${cloud.urls.http}/v1/models`, {
      headers: { authorization: `Bearer ${admin}` },
    }).then((r) => r.json())) as { version: string; stage: string }[];
    expect(Object.fromEntries(list.map((m) => [m.version, m.stage]))).toEqual({
      '1.0.0': 'archived',
      '1.1.0': 'production',
    });

    const audit = (await fetch(`${cloud.urls.http}/v1/audit?subject=tile@1.0.0`, {
      headers: { authorization: `Bearer ${admin}` },
    }).then((r) => r.json())) as { actor: string; action: string }[];
    expect(audit.map((e) => `${e.actor}:${e.action}`).reverse()).toEqual([
      'alice:model.register',
      'alice:model.stage',
      'bob:model.approve',
      'alice:model.stage',
      'bob:model.stage',
    ]);
  });

  it('registers versions with build metadata and refuses malformed ones without naming storage', async () => {
    const admin = cloud.adminToken.token;
    const upload = (version: string) => {
      const form = new FormData();
      form.set('name', 'semver');
      form.set('version', version);
      form.set('file', new Blob([meanScoreOnnx({ side: 16, threshold: 0.5 })]), 'm.onnx');
      return form;
    };
    const built = await call(admin, 'POST', '/v1/models', upload('1.0.1+build.7'));
    expect(built.status, JSON.stringify(built.body)).toBe(201);
    expect(built.body).toMatchObject({ version: '1.0.1+build.7' });
    const artifact = await fetch(
      `${cloud.urls.http}/v1/models/semver/${encodeURIComponent('1.0.1+build.7')}/artifact`,
      { headers: { authorization: `Bearer ${admin}` } },
    );
    expect(artifact.status).toBe(200);
    expect((await artifact.arrayBuffer()).byteLength).toBe(built.body.sizeBytes);
    for (const bad of ['1.0.0-..', '1.0.0-01', '1.0.0+']) {
      const refused = await call(admin, 'POST', '/v1/models', upload(bad));
      expect([bad, refused.status]).toEqual([bad, 400]);
      expect(refused.body.message).toMatch(/^invalid version .*: use semantic versioning/);
      expect(refused.body.message).not.toMatch(/blob|models\//);
    }
  });
});
