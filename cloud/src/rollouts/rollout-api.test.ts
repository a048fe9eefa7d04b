import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud } from '../cloud.ts';
import { meanScoreOnnx } from '@linesight/testkit/onnx';

let dir: string;
let cloud: Cloud;

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${cloud.urls.http}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${cloud.adminToken.token}`,
      ...(body instanceof FormData || body === undefined
        ? {}
        : { 'content-type': 'application/json' }),
    },
    body: body instanceof FormData ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-rollout-api-'));
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
  await cloud.start();
  const form = new FormData();
  form.set('name', 'm');
  form.set('version', '1.0.0');
  form.set('file', new Blob([meanScoreOnnx({ side: 16, threshold: 0.5 })]), 'm.onnx');
  expect((await call('POST', '/v1/models', form)).status).toBe(201);
  for (const [id, line] of [
    ['a', '1'],
    ['b', '1'],
    ['c', '2'],
  ])
    expect((await call('POST', '/v1/devices', { id, labels: { line } })).status).toBe(201);
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

describe('rollout API', () => {
  it('answers bad requests with a 4xx that says what is wrong', async () => {
    const bad = await call('POST', '/v1/rollouts', {
      model: 'm',
      version: '1.0.0',
      waves: [
        { percent: 50, soakSec: 1 },
        { percent: 40, soakSec: 1 },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/must grow.*reach 100/);
    const unknown = await call('POST', '/v1/rollouts', {
      model: 'm',
      version: '1.0.0',
      devices: ['zz'],
    });
    expect(unknown.status).toBe(404);
    const both = await call('POST', '/v1/rollouts', {
      model: 'm',
      version: '1.0.0',
      devices: ['a'],
      selector: { ids: ['a'] },
    });
    expect(both.status).toBe(400);
    const none = await call('POST', '/v1/rollouts', {
      model: 'm',
      version: '1.0.0',
      selector: { labels: { line: '9' } },
    });
    expect(none.status).toBe(400);
    expect((await call('GET', '/v1/rollouts/nope')).status).toBe(404);
  });

  it('creates a staged rollout by label, pauses, resumes and aborts it, with the audit trail', async () => {
    const created = await call('POST', '/v1/rollouts', {
      model: 'm',
      version: '1.0.0',
      selector: { labels: { line: '1' } },
      waves: [
        { percent: 50, soakSec: 60 },
        { percent: 100, soakSec: 60 },
      ],
      gates: { maxDefectRateChange: 0.1 },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body.state).toBe('in_progress');
    expect((created.body.devices as unknown[]).length).toBe(2);
    // The rollout store's own frozen list, sent as the plain array it always was.
    expect(created.body.deviceIds).toEqual(['a', 'b']);
    expect((await call('POST', `/v1/rollouts/${id}/pause`)).body.state).toBe('paused');
    expect((await call('POST', `/v1/rollouts/${id}/pause`)).status).toBe(409);
    expect((await call('POST', `/v1/rollouts/${id}/resume`)).body.state).toBe('in_progress');
    const aborted = await call('POST', `/v1/rollouts/${id}/abort`);
    expect(aborted.body).toMatchObject({ state: 'aborted', reason: 'aborted by admin' });

    // Reads that leave out the per-device list keep the counts and the rest.
    const whole = await call('GET', `/v1/rollouts/${id}`);
    expect((whole.body.devices as unknown[]).length).toBe(2);
    const brief = await call('GET', `/v1/rollouts/${id}?devices=false`);
    expect(brief.status).toBe(200);
    expect(brief.body).not.toHaveProperty('devices');
    // The same fields but the list (publish counts may move on between two reads).
    expect(Object.keys(brief.body).sort()).toEqual(
      Object.keys(whole.body)
        .filter((k) => k !== 'devices')
        .sort(),
    );
    const stable = Object.fromEntries(
      Object.entries(whole.body).filter(([k]) => k !== 'devices' && k !== 'publish'),
    );
    expect(brief.body).toMatchObject(stable);
    const listed = await call('GET', '/v1/rollouts?devices=false');
    const all = (listed.body as unknown as Record<string, unknown>[]).find((r) => r.id === id);
    expect(all).not.toHaveProperty('devices');
    expect(all).toMatchObject(stable);
    expect((await call('GET', `/v1/rollouts/${id}?devices=sometimes`)).status).toBe(400);
    const audit = await fetch(`${cloud.urls.http}/v1/audit?subject=rollout:${id}`, {
      headers: { authorization: `Bearer ${cloud.adminToken.token}` },
    });
    const actions = ((await audit.json()) as { action: string; actor: string }[]).map(
      (e) => `${e.actor}:${e.action}`,
    );
    expect(actions).toEqual(
      expect.arrayContaining([
        'admin:rollout.created',
        'system:rollouts:rollout.wave_started',
        'admin:rollout.paused',
        'admin:rollout.resumed',
        'admin:rollout.aborted',
      ]),
    );
  });
});
