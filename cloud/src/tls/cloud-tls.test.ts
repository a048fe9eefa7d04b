import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { makeSelfSigned } from '@linesight/testkit/pki';
import { pem, startTlsTestCloud, type TlsTestCloud } from '@linesight/testkit/tls-cloud';
import { Cloud } from '../cloud.ts';
import { loadCloudTls } from './cloud-tls.ts';

let tls: TlsTestCloud;

beforeAll(async () => {
  tls = await startTlsTestCloud();
}, 60_000);

afterAll(async () => {
  await tls?.close();
});

async function provision(
  id: string,
): Promise<{ password: string; caPem?: string; mqttUrl: string }> {
  const res = await tls.https('POST', '/v1/devices', { token: tls.adminToken, body: { id } });
  expect(res.status).toBe(201);
  return res.body as { password: string; caPem?: string; mqttUrl: string };
}

const authFailures = () => tls.metric('linesight_mqtt_auth_failures_total');

describe('a cloud serving TLS', () => {
  it('advertises https and mqtts and hands devices the CA to pin', async () => {
    expect(tls.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(tls.mqttUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const provisioned = await provision('tls-dev-1');
    expect(provisioned.mqttUrl).toBe(tls.mqttUrl);
    expect(provisioned.caPem).toBe(pem(tls.ca.certPath));
  });

  it('lets a device with the pinned CA and its password in over mqtts', async () => {
    const { password } = await provision('tls-dev-2');
    expect(await tls.deviceLogin('tls-dev-2', { password })).toBe('accepted');
  });

  it('is refused by a client that pins another CA (the handshake fails)', async () => {
    const { password } = await provision('tls-dev-3');
    const outcome = await tls.deviceLogin('tls-dev-3', { password, caPath: tls.otherCa.certPath });
    expect(outcome).not.toBe('accepted');
    expect(outcome).toMatch(/certificate/i);
  });

  it('refuses plain HTTP and plain MQTT on its TLS ports', async () => {
    const plain = tls.httpUrl.replace('https:', 'http:');
    await expect(fetch(`${plain}/healthz`)).rejects.toThrow();
    const client = mqtt.connect(tls.mqttUrl.replace('mqtts:', 'mqtt:'), {
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const outcome = await new Promise<string>((resolve) => {
      client.once('connect', () => resolve('accepted'));
      client.once('error', (err) => resolve(err.message));
      client.once('close', () => resolve('closed'));
    });
    await client.endAsync(true);
    expect(outcome).not.toBe('accepted');
  });

  it('logs a device in with a client certificate naming its id, without a password', async () => {
    await provision('cert-dev-1');
    const cert = await tls.deviceCa.issue('cert-dev-1', { client: true });
    expect(await tls.deviceLogin('cert-dev-1', { client: cert })).toBe('accepted');
  });

  it('refuses a certificate for another id, an expired one and one from another CA, counting each', async () => {
    await provision('cert-dev-2');
    await provision('cert-dev-3');
    const before = await authFailures();
    const otherId = await tls.deviceCa.issue('cert-dev-3', { client: true });
    expect(await tls.deviceLogin('cert-dev-2', { client: otherId })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    const expired = await tls.deviceCa.issue('cert-dev-2', { client: true, expired: true });
    expect(await tls.deviceLogin('cert-dev-2', { client: expired })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    const foreign = await tls.otherCa.issue('cert-dev-2', { client: true });
    expect(await tls.deviceLogin('cert-dev-2', { client: foreign })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    expect(await authFailures()).toBe(before + 3);
  });

  it('refuses a presented certificate that fails verification even with the right password', async () => {
    const { password } = await provision('cert-dev-4');
    const foreign = await tls.otherCa.issue('cert-dev-4', { client: true });
    expect(await tls.deviceLogin('cert-dev-4', { password, client: foreign })).not.toBe('accepted');
  });

  it('serves HTTPS to a client pinning its CA; a device may fetch its connection with its certificate', async () => {
    await provision('cert-dev-5');
    const cert = await tls.deviceCa.issue('cert-dev-5', { client: true });
    const withCert = tls.dispatcher({ client: cert });
    const without = tls.dispatcher();
    try {
      const ok = await fetch(`${tls.httpUrl}/v1/connection`, {
        dispatcher: withCert,
      } as RequestInit);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ cloudUrl: tls.httpUrl, mqttUrl: tls.mqttUrl });
      const anonymous = await fetch(`${tls.httpUrl}/v1/connection`, {
        dispatcher: without,
      } as RequestInit);
      expect(anonymous.status).toBe(401);
    } finally {
      await withCert.close();
      await without.close();
    }
    const wrongCa = tls.dispatcher({ caPath: tls.otherCa.certPath });
    try {
      await expect(
        fetch(`${tls.httpUrl}/healthz`, { dispatcher: wrongCa } as RequestInit),
      ).rejects.toThrow();
    } finally {
      await wrongCa.close();
    }
  });

  it('presents the configured certificate on the mqtts port', async () => {
    const port = Number(new URL(tls.mqttUrl).port);
    const fingerprint = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect(
        { host: '127.0.0.1', port, ca: pem(tls.ca.certPath), servername: 'localhost' },
        () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        },
      );
      socket.once('error', reject);
    });
    const loaded = await loadCloudTls({
      tlsCert: tls.server.certPath,
      tlsKey: tls.server.keyPath,
      tlsCa: tls.ca.certPath,
    });
    expect(fingerprint).toBe(loaded?.fingerprint256);
  });
});

describe('loadCloudTls', () => {
  async function problem(files: Parameters<typeof loadCloudTls>[0]): Promise<string> {
    const err = await loadCloudTls(files).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLinesightError(err, 'ERR_CLOUD_CONFIG')).toBe(true);
    return (err as Error).message;
  }

  it('is off without files, and takes a self-signed certificate as its own CA', async () => {
    expect(await loadCloudTls({})).toBeUndefined();
    const self = await makeSelfSigned(join(tls.dir, 'pki'), 'self');
    const loaded = await loadCloudTls({ tlsCert: self.certPath, tlsKey: self.keyPath });
    expect(loaded?.caPem).toContain('BEGIN CERTIFICATE');
    expect(loaded?.caPem.trim()).toBe(pem(self.certPath).trim());
  });

  it('names the missing, unreadable, mismatched or wrongly signed file', async () => {
    expect(await problem({ tlsCert: tls.server.certPath })).toContain('go together');
    expect(await problem({ tlsClientCa: tls.deviceCa.certPath })).toContain('needs tlsCert');
    expect(
      await problem({
        tlsCert: join(tls.dir, 'nope.crt'),
        tlsKey: tls.server.keyPath,
        tlsCa: tls.ca.certPath,
      }),
    ).toMatch(/tlsCert .*nope\.crt: cannot read it \(ENOENT/);
    const garbage = join(tls.dir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate\n');
    expect(await problem({ tlsCert: garbage, tlsKey: tls.server.keyPath })).toContain(
      'no PEM certificate',
    );
    expect(
      await problem({ tlsCert: tls.server.certPath, tlsKey: garbage, tlsCa: tls.ca.certPath }),
    ).toContain('not an unencrypted PEM private key');
    const other = await tls.ca.issue('other-server');
    expect(
      await problem({
        tlsCert: tls.server.certPath,
        tlsKey: other.keyPath,
        tlsCa: tls.ca.certPath,
      }),
    ).toContain('does not belong to the certificate');
    expect(
      await problem({
        tlsCert: tls.server.certPath,
        tlsKey: tls.server.keyPath,
        tlsCa: tls.otherCa.certPath,
      }),
    ).toContain('is not signed by the CA');
    expect(await problem({ tlsCert: tls.server.certPath, tlsKey: tls.server.keyPath })).toContain(
      'is not self-signed',
    );
    const expired = await tls.ca.issue('old-server', { expired: true });
    expect(
      await problem({ tlsCert: expired.certPath, tlsKey: expired.keyPath, tlsCa: tls.ca.certPath }),
    ).toContain('expired on 2020-01-02');
    const leaf = await tls.deviceCa.issue('not-a-ca', { client: true });
    expect(
      await problem({
        tlsCert: tls.server.certPath,
        tlsKey: tls.server.keyPath,
        tlsCa: tls.ca.certPath,
        tlsClientCa: leaf.certPath,
      }),
    ).toContain('not a CA');
  });

  it('stops a cloud from starting, before anything listens', async () => {
    const broken = new Cloud(
      {
        httpPort: 0,
        mqttPort: 0,
        dataDir: join(tls.dir, 'broken'),
        tlsCert: tls.server.certPath,
        tlsKey: join(tls.dir, 'missing.key'),
        tlsCa: tls.ca.certPath,
      },
      pino({ level: 'silent' }),
    );
    const err = await broken.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLinesightError(err, 'ERR_CLOUD_CONFIG')).toBe(true);
    expect((err as Error).message).toContain('missing.key');
  });
});
