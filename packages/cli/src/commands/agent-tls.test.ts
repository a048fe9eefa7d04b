// A real agent against a cloud serving TLS: it trusts only the CA from provisioning
// for mqtts and for HTTPS artifact downloads, and may log in with a client certificate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgent, writeDeviceCredentials, type Agent, type AgentApp } from '@linesight/agent';
import { meanScoreOnnx } from '@linesight/testkit/onnx';
import { pem, startTlsTestCloud, type TlsTestCloud } from '@linesight/testkit/tls-cloud';
import { SyntheticCamera } from '@linesight/firmware-sim';
import { isLinesightError } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';

let tls: TlsTestCloud;
const agents: AgentApp[] = [];

beforeAll(async () => {
  tls = await startTlsTestCloud();
  const form = new FormData();
  form.set('name', 'tls-model');
  form.set('version', '1.0.0');
  form.set('file', new Blob([meanScoreOnnx({ side: 16, threshold: 0.5 })]), 'm.onnx');
  expect((await call('POST', '/v1/models', form)).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await tls?.close();
});

/** An operator call over HTTPS, trusting only the test CA. */
async function call(method: string, path: string, body?: unknown) {
  const res = await tls.https(method, path, {
    token: tls.adminToken,
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, body: res.body as Record<string, unknown> };
}

/** How long the waits below poll. */
const WAIT = { timeoutMs: 60_000, intervalMs: 100 };

async function device(id: string) {
  return (await call('GET', `/v1/devices/${id}`)).body as {
    online: boolean;
    model: { version: string } | null;
  };
}

/** Provisions a device and writes its device.json as `linesight device provision` does. */
async function provision(id: string, edit: (creds: Record<string, unknown>) => void = () => {}) {
  const provisioned = await call('POST', '/v1/devices', { id });
  expect(provisioned.status).toBe(201);
  const creds = { ...provisioned.body, cloudUrl: tls.httpUrl };
  edit(creds);
  const dataDir = join(tls.dir, `agent-${id}`);
  await writeDeviceCredentials(join(dataDir, 'device.json'), creds as never);
  return dataDir;
}

async function start(id: string, dataDir: string): Promise<Agent> {
  const app = await runAgent({
    deviceId: id,
    dataDir,
    camera: new SyntheticCamera({ seed: 3, fps: 4, width: 64, height: 64 }),
    logLevel: 'silent',
  });
  agents.push(app);
  return app.agent;
}

describe('an agent provisioned by a TLS cloud', () => {
  it('connects over mqtts with the pinned CA and downloads its model over HTTPS', async () => {
    const dataDir = await provision('tls-agent-1');
    const creds = JSON.parse(readFileSync(join(dataDir, 'device.json'), 'utf8')) as {
      caPem?: string;
      mqttUrl: string;
    };
    expect(creds.caPem).toBe(pem(tls.ca.certPath));
    expect(creds.mqttUrl).toMatch(/^mqtts:/);
    await start('tls-agent-1', dataDir);
    await eventually(async () => (await device('tls-agent-1')).online, { ...WAIT, what: 'online' });
    const rollout = await call('POST', '/v1/rollouts', {
      model: 'tls-model',
      version: '1.0.0',
      devices: ['tls-agent-1'],
      waves: [{ percent: 100, soakSec: 0 }],
    });
    expect(rollout.status).toBe(201);
    await eventually(async () => (await device('tls-agent-1')).model?.version === '1.0.0', {
      ...WAIT,
      what: 'tls-model@1.0.0 live on tls-agent-1 (downloaded over HTTPS)',
    });
  });

  it('logs in with a client certificate and no password', async () => {
    const cert = await tls.deviceCa.issue('tls-agent-2', { client: true });
    const dataDir = await provision('tls-agent-2', (creds) => {
      delete creds.password;
      creds.clientCert = cert.certPath;
      creds.clientKey = cert.keyPath;
    });
    await start('tls-agent-2', dataDir);
    await eventually(async () => (await device('tls-agent-2')).online, { ...WAIT, what: 'online' });
  });

  it('refuses to start with neither a password nor a client certificate, saying so', async () => {
    const dataDir = await provision('tls-agent-4', (creds) => {
      delete creds.password;
    });
    const err = await start('tls-agent-4', dataDir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLinesightError(err, 'ERR_AGENT_CONFIG')).toBe(true);
    expect((err as Error).message).toContain(
      'password: required unless tls holds a client certificate',
    );
  });

  it('never connects when it pins another CA', async () => {
    const failuresBefore = await tls.metric('linesight_mqtt_tls_handshake_failures_total');
    const dataDir = await provision('tls-agent-3', (creds) => {
      creds.caPem = pem(tls.otherCa.certPath);
    });
    await start('tls-agent-3', dataDir);
    await eventually(
      async () =>
        (await tls.metric('linesight_mqtt_tls_handshake_failures_total')) > failuresBefore,
      { ...WAIT, what: 'the agent’s handshake to fail' },
    );
    expect((await device('tls-agent-3')).online).toBe(false);
  });
});
