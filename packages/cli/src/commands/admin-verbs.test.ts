import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { tinyOnnx } from '@linesight/testkit/onnx';
import { deviceCommand } from './device-command.ts';
import { keysCommand } from './keys-command.ts';
import { modelCommand } from './model-command.ts';
import { rolloutCommand } from './rollout-command.ts';
import { tokenCommand } from './token-command.ts';

let dir: string;
let cloud: TestCloud;
let api: CloudApiClient;
let out: string[] = [];

beforeAll(async () => {
  cloud = await startTestCloud();
  ({ dir, api } = cloud);
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    out.push(args.join(' '));
  });
});

afterEach(() => {
  out = [];
});

afterAll(async () => {
  vi.restoreAllMocks();
  await cloud?.close();
});

/** Runs `linesight <args>` against the test cloud; returns what it printed. */
async function run(command: Command, args: string[]): Promise<string[]> {
  out = [];
  await command
    .exitOverride()
    .parseAsync([...args, '--cloud', cloud.httpUrl, '--token', cloud.adminToken], {
      from: 'user',
    });
  return out;
}

describe('curl-only no more: device, model, token, keys and rollout verbs', () => {
  it('device list, show, rotate-credentials and decommission', async () => {
    await api.provisionDevice('verb-1', { line: 'a' });
    expect((await run(deviceCommand(), ['list']))[0]).toMatch(/^verb-1 {2}offline {2}no model/);
    const shown = JSON.parse((await run(deviceCommand(), ['show', 'verb-1', '--json']))[0] ?? '');
    expect(shown).toMatchObject({ id: 'verb-1', labels: { line: 'a' } });
    const file = join(dir, 'verb-1', 'device.json');
    await run(deviceCommand(), ['rotate-credentials', 'verb-1', '--out', file]);
    const creds = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(creds).toMatchObject({ deviceId: 'verb-1', cloudUrl: cloud.httpUrl });
    expect(await run(deviceCommand(), ['decommission', 'verb-1'])).toEqual([
      'decommissioned verb-1',
    ]);
    expect(await run(deviceCommand(), ['list'])).toEqual(['no devices']);
  });

  it('model list, show, stage and approve', async () => {
    await api.publishModel({
      name: 'verbs',
      version: '1.0.0',
      onnx: tinyOnnx({ width: 8, height: 8 }),
    });
    expect((await run(modelCommand(), ['list']))[0]).toMatch(/^verbs@1\.0\.0 {2}candidate/);
    const shown = JSON.parse(
      (await run(modelCommand(), ['show', 'verbs@1.0.0', '--json']))[0] ?? '',
    );
    expect(shown).toMatchObject({ name: 'verbs', version: '1.0.0' });
    expect(await run(modelCommand(), ['stage', 'verbs@1.0.0', 'staging'])).toEqual([
      'verbs@1.0.0 is now staging',
    ]);
    // Publisher and approver must differ: approve with a second operator's token.
    const { token } = await api.createToken('bob');
    out = [];
    await modelCommand()
      .exitOverride()
      .parseAsync(['approve', 'verbs@1.0.0', '--cloud', cloud.httpUrl, '--token', token], {
        from: 'user',
      });
    expect(out).toEqual(['verbs@1.0.0 approved by bob']);
    await expect(run(modelCommand(), ['show', 'verbs'])).rejects.toThrow(/name@version/);
  });

  it('token create, list and revoke', async () => {
    const created = await run(tokenCommand(), ['create', 'carol']);
    expect(created[0]).toMatch(/^carol \(operator\): lso_/);
    const viewer = JSON.parse(
      (await run(tokenCommand(), ['create', 'dave', '--role', 'viewer', '--json']))[0] ?? '',
    ) as { role: string };
    expect(viewer.role).toBe('viewer');
    const listed = (await run(tokenCommand(), ['list'])).join('\n');
    expect(listed).toMatch(/carol {2}operator {2}created .* by admin/);
    expect(listed).toMatch(/dave {2}viewer {2}created .* by admin/);
    expect(await run(tokenCommand(), ['revoke', 'carol'])).toEqual(['revoked the token of carol']);
  });

  it('keys rotate and rollout list', async () => {
    const before = (await (
      await fetch(`${cloud.httpUrl}/v1/keys`, {
        headers: { authorization: `Bearer ${cloud.adminToken}` },
      })
    ).json()) as unknown[];
    expect((await run(keysCommand(), ['rotate']))[0]).toMatch(/^active signing key [0-9a-f]{16}/);
    const after = (await (
      await fetch(`${cloud.httpUrl}/v1/keys`, {
        headers: { authorization: `Bearer ${cloud.adminToken}` },
      })
    ).json()) as unknown[];
    expect(after.length).toBe(before.length + 1);
    expect(await run(rolloutCommand(), ['list'])).toEqual(['no rollouts']);
  });
});
