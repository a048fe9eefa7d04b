// A real cloud in this process serving HTTPS and mqtts for tests, with the PKI made for it:
// the CA that signs its server certificate (what clients pin), the CA of device client
// certificates, and a CA it knows nothing of. Helpers speak to it as a pinning client.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { Agent as HttpDispatcher } from 'undici';
import type { CloudConfigInput } from '@linesight/cloud';
import { startTestCloud, type TestCloud } from './test-cloud.ts';
import { makeTestCa, type TestCa, type TestCertificate } from './test-pki.ts';

/** Who a TLS client trusts and what it presents: the cloud's CA unless `caPath` says otherwise. */
export interface TlsClientOptions {
  /** A client certificate to present (issued by `deviceCa` to log a device in). */
  client?: TestCertificate;
  /** The CA file to pin instead of the cloud's. */
  caPath?: string;
}

/** An HTTPS request of {@link TlsTestCloud.https}. */
export interface HttpsRequest extends TlsClientOptions {
  /** Sent as `Authorization: Bearer`. */
  token?: string;
  /** `user:password`, sent as `Authorization: Basic`. */
  basic?: string;
  /** JSON-encoded, or sent as it is when FormData. */
  body?: unknown;
}

/**
 * A started cloud serving TLS. It has no REST client (`api`): that client cannot pin a CA,
 * so requests go through {@link TlsTestCloud.https}.
 */
export interface TlsTestCloud extends Omit<TestCloud, 'api'> {
  /** Signed the cloud's server certificate; clients pin it. */
  readonly ca: TestCa;
  /** The cloud accepts client certificates it issues (`issue(id, { client: true })`). */
  readonly deviceCa: TestCa;
  /** A CA the cloud does not know: for pins and certificates that must fail. */
  readonly otherCa: TestCa;
  /** The cloud's server certificate, for 127.0.0.1 and localhost. */
  readonly server: TestCertificate;
  /** An HTTPS dispatcher for `fetch` that trusts only the pinned CA; the caller closes it. */
  dispatcher(options?: TlsClientOptions): HttpDispatcher;
  /** One HTTPS request to the cloud; the body is parsed when it is JSON, else text. */
  https(
    method: string,
    path: string,
    request?: HttpsRequest,
  ): Promise<{ status: number; body: unknown }>;
  /** A metric's value from /metrics (`name` or `name{label="value"}`); NaN when absent. */
  metric(series: string): Promise<number>;
  /**
   * Connects over mqtts as device `id` (MQTT 3.1.1, no reconnect): resolves with the
   * connected client, which the caller ends, or rejects with why it was refused.
   */
  connectDevice(
    id: string,
    options?: TlsClientOptions & { password?: string },
  ): Promise<MqttClient>;
  /** `'accepted'`, or why the device's mqtts login failed; leaves no session open. */
  deviceLogin(id: string, options?: TlsClientOptions & { password?: string }): Promise<string>;
}

/** The PEM text of a file. */
export const pem = (path: string): string => readFileSync(path, 'utf8');

/**
 * Makes a PKI in a fresh folder and starts a cloud serving HTTPS and mqtts with it, asking
 * for client certificates from `deviceCa`. `config` adds to that configuration.
 */
export async function startTlsTestCloud(
  options: { config?: Partial<CloudConfigInput>; logger?: Logger } = {},
): Promise<TlsTestCloud> {
  // The PKI comes first (the cloud's configuration names its files), in a folder of its own.
  const pkiDir = await mkdtemp(join(tmpdir(), 'linesight-test-pki-'));
  let pki: { ca: TestCa; deviceCa: TestCa; otherCa: TestCa; server: TestCertificate };
  let base: TestCloud;
  try {
    const ca = await makeTestCa(pkiDir, 'server-ca');
    pki = {
      ca,
      deviceCa: await makeTestCa(pkiDir, 'device-ca'),
      otherCa: await makeTestCa(pkiDir, 'other-ca'),
      server: await ca.issue('cloud'),
    };
    base = await startTestCloud({
      config: {
        tlsCert: pki.server.certPath,
        tlsKey: pki.server.keyPath,
        tlsCa: ca.certPath,
        tlsClientCa: pki.deviceCa.certPath,
        ...options.config,
      },
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
  } catch (err) {
    await rm(pkiDir, { recursive: true, force: true });
    throw err;
  }
  const { ca } = pki;
  const withPin = (o: TlsClientOptions & { password?: string }) => ({
    ...o,
    caPath: o.caPath ?? ca.certPath,
  });
  let closing: Promise<void> | undefined;
  return {
    get cloud() {
      return base.cloud;
    },
    dir: base.dir,
    get httpUrl() {
      return base.httpUrl;
    },
    get mqttUrl() {
      return base.mqttUrl;
    },
    get adminToken() {
      return base.adminToken;
    },
    ...pki,
    dispatcher: (o = {}) => dispatcher(o.caPath ?? ca.certPath, o.client),
    https: async (method, path, request = {}) => {
      const via = dispatcher(request.caPath ?? ca.certPath, request.client);
      try {
        const headers: Record<string, string> = {};
        if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
        if (request.basic !== undefined)
          headers.authorization = `Basic ${Buffer.from(request.basic).toString('base64')}`;
        const form = request.body instanceof FormData;
        if (request.body !== undefined && !form) headers['content-type'] = 'application/json';
        const res = await fetch(`${base.httpUrl}${path}`, {
          method,
          headers,
          ...(request.body === undefined
            ? {}
            : { body: form ? (request.body as FormData) : JSON.stringify(request.body) }),
          dispatcher: via,
        } as RequestInit);
        const text = await res.text();
        const json = text.startsWith('{') || text.startsWith('[');
        return { status: res.status, body: json ? (JSON.parse(text) as unknown) : text };
      } finally {
        await via.close();
      }
    },
    metric: async (series) => {
      const via = dispatcher(ca.certPath);
      try {
        const res = await fetch(`${base.httpUrl}/metrics`, { dispatcher: via } as RequestInit);
        const line = (await res.text()).split('\n').find((l) => l.startsWith(`${series} `));
        return Number(line?.split(' ')[1] ?? NaN);
      } finally {
        await via.close();
      }
    },
    connectDevice: (id, o = {}) => connectDevice(base.mqttUrl, id, withPin(o)),
    deviceLogin: async (id, o = {}) => {
      try {
        const client = await connectDevice(base.mqttUrl, id, withPin(o));
        await client.endAsync(true);
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    },
    restart: () => base.restart(),
    close: () =>
      (closing ??= (async () => {
        await base.close();
        await rm(pkiDir, { recursive: true, force: true });
      })()),
  };
}

/** An HTTPS dispatcher trusting only the CA in `caPath`, presenting `client` when given. */
function dispatcher(caPath: string, client?: TestCertificate): HttpDispatcher {
  return new HttpDispatcher({
    connect: {
      ca: pem(caPath),
      ...(client ? { cert: pem(client.certPath), key: pem(client.keyPath) } : {}),
    },
  });
}

/** Connects over mqtts as a device; resolves with the connected client, rejects with the refusal. */
async function connectDevice(
  mqttUrl: string,
  id: string,
  o: TlsClientOptions & { password?: string; caPath: string },
): Promise<MqttClient> {
  const client = mqtt.connect(mqttUrl, {
    clientId: id,
    username: id,
    ...(o.password !== undefined ? { password: o.password } : {}),
    ca: pem(o.caPath),
    rejectUnauthorized: true,
    ...(o.client ? { cert: pem(o.client.certPath), key: pem(o.client.keyPath) } : {}),
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  return new Promise<MqttClient>((resolve, reject) => {
    client.once('connect', () => resolve(client));
    const fail = (why: string) => {
      void client.endAsync(true).finally(() => reject(new Error(why)));
    };
    client.once('error', (err) => fail(err.message));
    client.once('close', () => fail('closed'));
  });
}
