import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { makeTestCa, type TestCa } from '@linesight/testkit/pki';
import { deviceCommand } from './device-command.ts';

let cloud: TestCloud;
let deviceCa: TestCa;
let out: string[] = [];

beforeAll(async () => {
  cloud = await startTestCloud();
  deviceCa = await makeTestCa(join(cloud.dir, 'pki'), 'device-ca');
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    out.push(args.join(' '));
  });
}, 60_000);

afterAll(async () => {
  vi.restoreAllMocks();
  await cloud?.close();
});

/** Runs `linesight device <args>` against the test cloud; returns what it printed. */
async function run(args: string[]): Promise<string[]> {
  out = [];
  await deviceCommand()
    .exitOverride()
    .parseAsync([...args, '--cloud', cloud.httpUrl, '--token', cloud.adminToken], {
      from: 'user',
    });
  return out;
}

describe('linesight device revoke-cert and revoked-certs', () => {
  it('revokes by certificate file or fingerprint and lists what was revoked', async () => {
    await cloud.api.provisionDevice('cli-rev-1', {});
    const cert = await deviceCa.issue('cli-rev-1', { client: true });
    const fingerprint = new X509Certificate(await readFile(cert.certPath, 'utf8')).fingerprint256
      .replaceAll(':', '')
      .toLowerCase();
    expect(await run(['revoked-certs', 'cli-rev-1'])).toEqual([
      'no revoked certificates for cli-rev-1',
    ]);
    expect(
      await run(['revoke-cert', 'cli-rev-1', '--cert', cert.certPath, '--reason', 'leaked']),
    ).toEqual([`revoked certificate ${fingerprint} of cli-rev-1; no live session used it`]);
    expect((await run(['revoke-cert', 'cli-rev-1', '--fingerprint', fingerprint]))[0]).toMatch(
      new RegExp(`^certificate ${fingerprint} of cli-rev-1 was already revoked \\(.+ by admin\\)$`),
    );
    const listed = JSON.parse((await run(['revoked-certs', 'cli-rev-1', '--json']))[0] ?? '');
    expect(listed).toEqual([
      expect.objectContaining({ fingerprintSha256: fingerprint, reason: 'leaked' }),
    ]);
  });

  it('needs exactly one of --cert and --fingerprint', async () => {
    await expect(run(['revoke-cert', 'cli-rev-1'])).rejects.toThrow(/either --cert/);
  });
});
