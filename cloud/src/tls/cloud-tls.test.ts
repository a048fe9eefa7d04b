import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import pino from 'pino';
import { Agent as HttpDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { Cloud } from '../cloud.ts';
import { loadCloudTls } from './cloud-tls.ts';
import {
  makeSelfSigned,
  makeTestCa,
  type TestCa,
  type TestCertificate,
} from '@linesight/testkit/pki';

let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let deviceCa: TestCa;
let server: TestCertificate;
let cloud: Cloud;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-tls-'));
  ca = await makeTestCa(join(dir, 'pki'), 'server-ca');
  otherCa = await makeTestCa(join(dir, 'pki'), 'other-ca');
  deviceCa = await makeTestCa(join(dir, 'pki'), 'device-ca');
  server = await ca.issue('cloud');
  cloud = new Cloud(
    {
      httpPort: 0,
      mqttPort: 0,
      dataDir: join(dir, 'cloud'),
      tlsCert: server.certPath,
      tlsKey: server.keyPath,
      tlsCa: ca.certPath,
      tlsClientCa: deviceCa.certPath,
    },
    pino({ level: 'silent' }),
  );
  await cloud.start();
}, 60_000);

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

const pem = (path: string) => readFileSync(path, 'utf8');
const bearer = () => ({ authorization: `Bearer ${cloud.adminToken.token}` });

/** An HTTPS dispatcher that trusts only the given CA. */
function pinned(caPath: string, client?: TestCertificate): HttpDispatcher {
  return new HttpDispatcher({
    connect: {
      ca: pem(caPath),
      ...(client ? { cert: pem(client.certPath), key: pem(client.keyPath) } : {}),
    },
  });
}

async function provision(
  id: string,
): Promise<{ password: string; caPem?: string; mqttUrl: string }> {
  const dispatcher = pinned(ca.certPath);
  try {
    const res = await fetch(`${cloud.urls.http}/v1/devices`, {
      method: 'POST',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
      dispatcher,
    } as RequestInit);
    expect(res.status).toBe(201);
    return (await res.json()) as { password: string; caPem?: string; mqttUrl: string };
  } finally {
    await dispatcher.close();
  }
}

/** Connects over mqtts as a device; resolves with the CONNACK outcome. */
async function login(options: {
  id: string;
  password?: string;
  caPath: string;
  client?: TestCertificate;
}): Promise<'accepted' | string> {
  const client = mqtt.connect(cloud.urls.mqtt, {
    clientId: options.id,
    username: options.id,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ca: pem(options.caPath),
    rejectUnauthorized: true,
    ...(options.client
      ? { cert: pem(options.client.certPath), key: pem(options.client.keyPath) }
      : {}),
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  try {
    return await new Promise<string>((resolve) => {
      client.once('connect', () => resolve('accepted'));
      client.once('error', (err) => resolve(err.message));
      client.once('close', () => resolve('closed'));
    });
  } finally {
    await client.endAsync(true);
  }
}

async function authFailures(): Promise<number> {
  const dispatcher = pinned(ca.certPath);
  try {
    const text = await (
      await fetch(`${cloud.urls.http}/metrics`, { dispatcher } as RequestInit)
    ).text();
    const line = text.split('\n').find((l) => l.startsWith('linesight_mqtt_auth_failures_total'));
    return Number(line?.split(' ')[1]);
  } finally {
    await dispatcher.close();
  }
}

describe('a cloud serving TLS', () => {
  it('advertises https and mqtts and hands devices the CA to pin', async () => {
    expect(cloud.urls.http).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(cloud.urls.mqtt).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const provisioned = await provision('tls-dev-1');
    expect(provisioned.mqttUrl).toBe(cloud.urls.mqtt);
    expect(provisioned.caPem).toBe(pem(ca.certPath));
  });

  it('lets a device with the pinned CA and its password in over mqtts', async () => {
    const { password } = await provision('tls-dev-2');
    expect(await login({ id: 'tls-dev-2', password, caPath: ca.certPath })).toBe('accepted');
  });

  it('is refused by a client that pins another CA (the handshake fails)', async () => {
    const { password } = await provision('tls-dev-3');
    const outcome = await login({ id: 'tls-dev-3', password, caPath: otherCa.certPath });
    expect(outcome).not.toBe('accepted');
    expect(outcome).toMatch(/certificate/i);
  });

  it('refuses plain HTTP and plain MQTT on its TLS ports', async () => {
    const plain = cloud.urls.http.replace('https:', 'http:');
    await expect(fetch(`${plain}/healthz`)).rejects.toThrow();
    const client = mqtt.connect(cloud.urls.mqtt.replace('mqtts:', 'mqtt:'), {
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
    const cert = await deviceCa.issue('cert-dev-1', { client: true });
    expect(await login({ id: 'cert-dev-1', caPath: ca.certPath, client: cert })).toBe('accepted');
  });

  it('refuses a certificate for another id, an expired one and one from another CA, counting each', async () => {
    await provision('cert-dev-2');
    await provision('cert-dev-3');
    const before = await authFailures();
    const otherId = await deviceCa.issue('cert-dev-3', { client: true });
    expect(await login({ id: 'cert-dev-2', caPath: ca.certPath, client: otherId })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    const expired = await deviceCa.issue('cert-dev-2', { client: true, expired: true });
    expect(await login({ id: 'cert-dev-2', caPath: ca.certPath, client: expired })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    const foreign = await otherCa.issue('cert-dev-2', { client: true });
    expect(await login({ id: 'cert-dev-2', caPath: ca.certPath, client: foreign })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    expect(await authFailures()).toBe(before + 3);
  });

  it('refuses a presented certificate that fails verification even with the right password', async () => {
    const { password } = await provision('cert-dev-4');
    const foreign = await otherCa.issue('cert-dev-4', { client: true });
    expect(
      await login({ id: 'cert-dev-4', password, caPath: ca.certPath, client: foreign }),
    ).not.toBe('accepted');
  });

  it('serves HTTPS to a client pinning its CA; a device may fetch its connection with its certificate', async () => {
    await provision('cert-dev-5');
    const cert = await deviceCa.issue('cert-dev-5', { client: true });
    const withCert = pinned(ca.certPath, cert);
    const without = pinned(ca.certPath);
    try {
      const ok = await fetch(`${cloud.urls.http}/v1/connection`, {
        dispatcher: withCert,
      } as RequestInit);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ cloudUrl: cloud.urls.http, mqttUrl: cloud.urls.mqtt });
      const anonymous = await fetch(`${cloud.urls.http}/v1/connection`, {
        dispatcher: without,
      } as RequestInit);
      expect(anonymous.status).toBe(401);
    } finally {
      await withCert.close();
      await without.close();
    }
    const wrongCa = pinned(otherCa.certPath);
    try {
      await expect(
        fetch(`${cloud.urls.http}/healthz`, { dispatcher: wrongCa } as RequestInit),
      ).rejects.toThrow();
    } finally {
      await wrongCa.close();
    }
  });

  it('presents the configured certificate on the mqtts port', async () => {
    const port = Number(new URL(cloud.urls.mqtt).port);
    const fingerprint = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect(
        { host: '127.0.0.1', port, ca: pem(ca.certPath), servername: 'localhost' },
        () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        },
      );
      socket.once('error', reject);
    });
    const tls = await loadCloudTls({
      tlsCert: server.certPath,
      tlsKey: server.keyPath,
      tlsCa: ca.certPath,
    });
    expect(fingerprint).toBe(tls?.fingerprint256);
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
    const self = await makeSelfSigned(join(dir, 'pki'), 'self');
    const tls = await loadCloudTls({ tlsCert: self.certPath, tlsKey: self.keyPath });
    expect(tls?.caPem).toContain('BEGIN CERTIFICATE');
    expect(tls?.caPem.trim()).toBe(pem(self.certPath).trim());
  });

  it('names the missing, unreadable, mismatched or wrongly signed file', async () => {
    expect(await problem({ tlsCert: server.certPath })).toContain('go together');
    expect(await problem({ tlsClientCa: deviceCa.certPath })).toContain('needs tlsCert');
    expect(
      await problem({ tlsCert: join(dir, 'nope.crt'), tlsKey: server.keyPath, tlsCa: ca.certPath }),
    ).toMatch(/tlsCert .*nope\.crt: cannot read it \(ENOENT/);
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate\n');
    expect(await problem({ tlsCert: garbage, tlsKey: server.keyPath })).toContain(
      'no PEM certificate',
    );
    expect(
      await problem({ tlsCert: server.certPath, tlsKey: garbage, tlsCa: ca.certPath }),
    ).toContain('not an unencrypted PEM private key');
    const other = await ca.issue('other-server');
    expect(
      await problem({ tlsCert: server.certPath, tlsKey: other.keyPath, tlsCa: ca.certPath }),
    ).toContain('does not belong to the certificate');
    expect(
      await problem({ tlsCert: server.certPath, tlsKey: server.keyPath, tlsCa: otherCa.certPath }),
    ).toContain('is not signed by the CA');
    expect(await problem({ tlsCert: server.certPath, tlsKey: server.keyPath })).toContain(
      'is not self-signed',
    );
    const expired = await ca.issue('old-server', { expired: true });
    expect(
      await problem({ tlsCert: expired.certPath, tlsKey: expired.keyPath, tlsCa: ca.certPath }),
    ).toContain('expired on 2020-01-02');
    const leaf = await deviceCa.issue('not-a-ca', { client: true });
    expect(
      await problem({
        tlsCert: server.certPath,
        tlsKey: server.keyPath,
        tlsCa: ca.certPath,
        tlsClientCa: leaf.certPath,
      }),
    ).toContain('not a CA');
  });

  it('stops a cloud from starting, before anything listens', async () => {
    const broken = new Cloud(
      {
        httpPort: 0,
        mqttPort: 0,
        dataDir: join(dir, 'broken'),
        tlsCert: server.certPath,
        tlsKey: join(dir, 'missing.key'),
        tlsCa: ca.certPath,
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
