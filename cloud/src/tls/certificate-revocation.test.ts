import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopic } from '@linesight/protocol';
import type { TestCertificate } from '@linesight/testkit/pki';
import { pem, startTlsTestCloud, type TlsTestCloud } from '@linesight/testkit/tls-cloud';

let tls: TlsTestCloud;

beforeAll(async () => {
  tls = await startTlsTestCloud();
}, 60_000);

afterAll(async () => {
  await tls?.close();
});

const fingerprintOf = (cert: TestCertificate) =>
  new X509Certificate(pem(cert.certPath)).fingerprint256.replaceAll(':', '').toLowerCase();
const call = (...args: Parameters<TlsTestCloud['https']>) => tls.https(...args);
const login = (...args: Parameters<TlsTestCloud['deviceLogin']>) => tls.deviceLogin(...args);
const admin = () => tls.adminToken;

async function provision(id: string): Promise<string> {
  const res = await call('POST', '/v1/devices', { token: admin(), body: { id } });
  expect(res.status).toBe(201);
  return (res.body as { password: string }).password;
}

async function refusals(): Promise<{ mqtt: number; https: number }> {
  const value = (protocol: string) =>
    tls.metric(`linesight_revoked_certificate_refusals_total{protocol="${protocol}"}`);
  return { mqtt: await value('mqtt'), https: await value('https') };
}

let certA: TestCertificate;
let certB: TestCertificate;
let password: string;
const ID = 'rev-dev-1';

describe('revoking a client certificate of a device in service', () => {
  beforeAll(async () => {
    password = await provision(ID);
    certA = await tls.deviceCa.issue(ID, { client: true });
    certB = await tls.deviceCa.issue(ID, { client: true });
  });

  it('ends the live session that used it and refuses it over mqtts and HTTPS; the other certificate and the password still work', async () => {
    const live = await tls.connectDevice(ID, { client: certA });
    const closed = new Promise<void>((resolve) => live.once('close', () => resolve()));
    const before = await refusals();

    const revoked = await call('POST', `/v1/devices/${ID}/certificates/revoke`, {
      token: admin(),
      body: { certificatePem: pem(certA.certPath), reason: 'laptop stolen' },
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({
      deviceId: ID,
      fingerprintSha256: fingerprintOf(certA),
      revokedBy: 'admin',
      reason: 'laptop stolen',
      alreadyRevoked: false,
      sessionEnded: true,
    });
    await closed;
    await live.endAsync(true);

    expect(await login(ID, { client: certA })).toMatch(/Bad username or password|Not authorized/i);
    // A revoked certificate refuses the login even with the right password.
    expect(await login(ID, { client: certA, password })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    expect((await call('GET', '/v1/connection', { client: certA })).status).toBe(401);
    expect(await refusals()).toEqual({ mqtt: before.mqtt + 2, https: before.https + 1 });

    expect(await login(ID, { client: certB })).toBe('accepted');
    expect(await login(ID, { password })).toBe('accepted');
    expect((await call('GET', '/v1/connection', { client: certB })).status).toBe(200);
    expect((await call('GET', '/v1/connection', { basic: `${ID}:${password}` })).status).toBe(200);

    const list = await call('GET', `/v1/devices/${ID}/certificates/revoked`, { token: admin() });
    expect(list.status).toBe(200);
    expect(list.body).toEqual([
      expect.objectContaining({ deviceId: ID, fingerprintSha256: fingerprintOf(certA) }),
    ]);
    const audit = await call('GET', `/v1/audit?action=device.revoke_certificate&subject=${ID}`, {
      token: admin(),
    });
    expect(audit.body).toEqual([
      expect.objectContaining({
        actor: 'admin',
        details: { fingerprintSha256: fingerprintOf(certA), reason: 'laptop stolen' },
      }),
    ]);
  });

  it('leaves a live password session alone and keeps the first record when revoked again', async () => {
    const live = await tls.connectDevice(ID, { password });
    try {
      // The colon-separated upper-case form openssl prints.
      const again = await call('POST', `/v1/devices/${ID}/certificates/revoke`, {
        token: admin(),
        body: { fingerprintSha256: new X509Certificate(pem(certA.certPath)).fingerprint256 },
      });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({
        fingerprintSha256: fingerprintOf(certA),
        reason: 'laptop stolen',
        alreadyRevoked: true,
        sessionEnded: false,
      });
      // A round trip on the password session: it is still open.
      await live.subscribeAsync(deviceTopic(ID, 'desired'), { qos: 1 });
      expect(live.connected).toBe(true);
    } finally {
      await live.endAsync(true);
    }
  });

  it('answers bad input with 4xx and a message', async () => {
    const revoke = (id: string, body: unknown, token = admin()) =>
      call('POST', `/v1/devices/${id}/certificates/revoke`, { token, body });
    const fingerprint = fingerprintOf(certB);
    expect((await revoke('no-such-device', { fingerprintSha256: fingerprint })).status).toBe(404);
    expect(
      (await call('GET', '/v1/devices/no-such-device/certificates/revoked', { token: admin() }))
        .status,
    ).toBe(404);
    const garbage = await revoke(ID, {
      certificatePem: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n',
    });
    expect(garbage.status).toBe(400);
    expect(JSON.stringify(garbage.body)).toContain('not a readable X.509 certificate');
    expect((await revoke(ID, { certificatePem: 'hello' })).status).toBe(400);
    expect((await revoke(ID, { fingerprintSha256: 'abc123' })).status).toBe(400);
    expect((await revoke(ID, {})).status).toBe(400);
    expect(
      (await revoke(ID, { fingerprintSha256: fingerprint, certificatePem: pem(certB.certPath) }))
        .status,
    ).toBe(400);
    const otherDevice = await tls.deviceCa.issue('rev-dev-other', { client: true });
    const wrongName = await revoke(ID, { certificatePem: pem(otherDevice.certPath) });
    expect(wrongName.status).toBe(400);
    expect(JSON.stringify(wrongName.body)).toContain('rev-dev-other');

    const viewer = await call('POST', '/v1/tokens', {
      token: admin(),
      body: { actor: 'rev-viewer', role: 'viewer' },
    });
    const viewerToken = (viewer.body as { token: string }).token;
    expect((await revoke(ID, { fingerprintSha256: fingerprint }, viewerToken)).status).toBe(403);
    expect(
      (
        await call('POST', `/v1/devices/${ID}/certificates/revoke`, {
          basic: `${ID}:${password}`,
          body: { fingerprintSha256: fingerprint },
        })
      ).status,
    ).toBe(401);
    // Nothing of that revoked certB.
    expect(await login(ID, { client: certB })).toBe('accepted');
  });

  it('still refuses the revoked certificate after a restart on the same data folder', async () => {
    await tls.restart();
    expect(await login(ID, { client: certA })).toMatch(/Bad username or password|Not authorized/i);
    expect((await call('GET', '/v1/connection', { client: certA })).status).toBe(401);
    expect(await login(ID, { client: certB })).toBe('accepted');
    const list = await call('GET', `/v1/devices/${ID}/certificates/revoked`, { token: admin() });
    expect((list.body as unknown[]).length).toBe(1);
  }, 60_000);
});
