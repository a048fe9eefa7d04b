import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CloudApiClient } from '@linesight/api-client';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { deviceCommand } from './device-command.ts';

let dir: string;
let cloud: TestCloud;
let admin: CloudApiClient;

beforeAll(async () => {
  cloud = await startTestCloud();
  dir = cloud.dir;
  admin = cloud.api;
});

afterAll(async () => {
  await cloud?.close();
});

async function call(
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${cloud.httpUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('one-device enrolment tokens', () => {
  it('provision exactly their device, once, with the labels they were issued with', async () => {
    const issued = await admin.createEnrolmentToken('line-9', { labels: { line: '9' } });
    expect(issued.token).toMatch(/^lse1\./);
    // Another id, or other labels: refused, nothing provisioned.
    const other = await call('POST', '/v1/devices', issued.token, { id: 'line-8' });
    expect(other.status).toBe(403);
    expect(String(other.json.message)).toMatch(/for device line-9, not line-8/);
    const relabel = await call('POST', '/v1/devices', issued.token, {
      id: 'line-9',
      labels: { line: '1' },
    });
    expect(relabel.status).toBe(403);
    // It opens no other door.
    expect((await call('GET', '/v1/devices', issued.token)).status).toBe(401);
    expect(
      (await call('POST', '/v1/devices/line-7/enrolment-token', issued.token, {})).status,
    ).toBe(401);

    const done = await call('POST', '/v1/devices', issued.token, { id: 'line-9' });
    expect(done.status).toBe(201);
    expect(done.json).toMatchObject({ deviceId: 'line-9', username: 'line-9' });
    const device = await admin.getDevice('line-9');
    expect(device.labels).toEqual({ line: '9' });
    const audit = await call('GET', '/v1/audit?subject=line-9', cloud.adminToken);
    expect(JSON.stringify(audit.json)).toContain('enrolment:line-9');

    // Used once: refused again, also after the device is decommissioned.
    expect((await call('POST', '/v1/devices', issued.token, { id: 'line-9' })).status).toBe(403);
    await admin.decommissionDevice('line-9');
    const again = await call('POST', '/v1/devices', issued.token, { id: 'line-9' });
    expect(again.status).toBe(403);
    expect(String(again.json.message)).toMatch(/used already/);
  });

  it('cannot bring back a device decommissioned after it was issued, and is refused when tampered with', async () => {
    const early = await admin.createEnrolmentToken('line-10');
    await admin.provisionDevice('line-10');
    // Issuing one for a provisioned device is a conflict.
    expect(
      (await call('POST', '/v1/devices/line-10/enrolment-token', cloud.adminToken, {})).status,
    ).toBe(409);
    await admin.decommissionDevice('line-10');
    const back = await call('POST', '/v1/devices', early.token, { id: 'line-10' });
    expect(back.status).toBe(403);
    expect(String(back.json.message)).toMatch(/decommissioned after/);

    const fresh = await admin.createEnrolmentToken('line-11');
    const [prefix, body, mac] = fresh.token.split('.');
    const forged = Buffer.from(body ?? '', 'base64url')
      .toString('utf8')
      .replace('line-11', 'line-12');
    const tampered = `${prefix}.${Buffer.from(forged).toString('base64url')}.${mac}`;
    const refused = await call('POST', '/v1/devices', tampered, { id: 'line-12' });
    expect(refused.status).toBe(401);
    expect(String(refused.json.message)).toMatch(/expired or was not signed by this cloud/);
  });

  it('works from the CLI: enrolment-token prints the token alone, provision takes it as its token', async () => {
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
      printed.push(String(line));
    });
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await deviceCommand()
        .exitOverride()
        .parseAsync(
          [
            'enrolment-token',
            'line-20',
            '--ttl',
            '600',
            '--label',
            'cell=a',
            '--cloud',
            cloud.httpUrl,
            '--token',
            cloud.adminToken,
          ],
          { from: 'user' },
        );
      const token = printed[0] ?? '';
      expect(token).toMatch(/^lse1\.[^\s]+$/);
      const out = join(dir, 'agent-line-20', 'device.json');
      await deviceCommand()
        .exitOverride()
        .parseAsync(
          [
            'provision',
            '--id',
            'line-20',
            '--out',
            out,
            '--cloud',
            cloud.httpUrl,
            '--token',
            token,
          ],
          { from: 'user' },
        );
      const creds = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
      expect(creds).toMatchObject({ deviceId: 'line-20', mqttUrl: cloud.mqttUrl });
      expect((await admin.getDevice('line-20')).labels).toEqual({ cell: 'a' });
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
  });
});
