// A device may download only the artifacts its desired state names (live,
// shadow) and its last-known-good; operators may download any.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cloud } from '../cloud.ts';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { meanScoreOnnx } from '@linesight/testkit/onnx';

let testCloud: TestCloud;
let cloud: Cloud;
const secrets = new Map<string, string>();

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

/** Status of a device's artifact download, and the error message if refused. */
async function download(deviceId: string, version: string) {
  const basic = Buffer.from(`${deviceId}:${secrets.get(deviceId)}`).toString('base64');
  const res = await fetch(`${cloud.urls.http}/v1/models/m/${version}/artifact`, {
    headers: { authorization: `Basic ${basic}` },
  });
  const text = Buffer.from(await res.arrayBuffer());
  return { status: res.status, message: res.ok ? '' : String(JSON.parse(text.toString()).message) };
}

/** Rolls m@version out to one device in a single wave, waits until its desired state names it; returns the rollout id. */
async function assign(deviceId: string, version: string) {
  const created = await call('POST', '/v1/rollouts', {
    model: 'm',
    version,
    devices: [deviceId],
    waves: [{ percent: 100, soakSec: 0 }],
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const device = (await call('GET', `/v1/devices/${deviceId}`)).body;
    if ((device.desiredModel as { version?: string } | null)?.version === version) break;
    if (Date.now() > deadline) throw new Error(`${deviceId} was not assigned m@${version}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return created.body.id as string;
}

beforeAll(async () => {
  testCloud = await startTestCloud();
  cloud = testCloud.cloud;
  for (const [version, threshold] of [
    ['1.0.0', 0.5],
    ['2.0.0', 0.4],
    ['3.0.0', 0.3],
  ] as const) {
    const form = new FormData();
    form.set('name', 'm');
    form.set('version', version);
    form.set('file', new Blob([meanScoreOnnx({ side: 16, threshold })]), 'm.onnx');
    expect((await call('POST', '/v1/models', form)).status).toBe(201);
  }
  for (const id of ['a', 'b']) {
    const provisioned = await call('POST', '/v1/devices', { id });
    secrets.set(id, provisioned.body.password as string);
  }
});

afterAll(async () => {
  await testCloud.close();
});

describe('artifact downloads by devices', () => {
  it('allow the assigned model and the last-known-good, refuse the rest with 403', async () => {
    expect((await download('a', '1.0.0')).status).toBe(403);
    const first = await assign('a', '1.0.0');
    expect((await download('a', '1.0.0')).status).toBe(200);
    // No agent reports here, so the rollout would wait: end it to start the next one.
    expect((await call('POST', `/v1/rollouts/${first}/abort`)).status).toBe(200);
    // Another device's assignment grants nothing.
    expect(await download('b', '1.0.0')).toEqual({
      status: 403,
      message:
        'device b may download only the models its desired state names (live, shadow) and its last-known-good; m@1.0.0 is none of them',
    });

    await assign('a', '2.0.0');
    expect((await download('a', '2.0.0')).status).toBe(200);
    // 1.0.0 is now its last-known-good.
    expect((await download('a', '1.0.0')).status).toBe(200);
    expect((await download('a', '3.0.0')).status).toBe(403);
    // A model that does not exist answers the same: no oracle for other models' names.
    expect((await download('a', '9.9.9')).status).toBe(403);
  });

  it('lets an operator download any artifact', async () => {
    const res = await fetch(`${cloud.urls.http}/v1/models/m/3.0.0/artifact`, {
      headers: { authorization: `Bearer ${cloud.adminToken.token}` },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });
});
