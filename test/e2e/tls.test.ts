// A cloud process serving HTTPS and mqtts from certificate files, an operator
// provisioning through it with NODE_EXTRA_CA_CERTS, and real agent processes:
// one pinning the CA from provisioning with its password, one logging in with a
// client certificate and no password, one whose certificate names another id.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCa, type TestCa } from '@linesight/testkit/pki';
import { startCloudProcess } from '../helpers/cloud-process.ts';
import { LinesightProcess, runLinesight, type LogLine } from '../helpers/linesight-process.ts';

const adminToken = randomBytes(24).toString('base64url');
let dir: string;
let ca: TestCa;
let deviceCa: TestCa;
let cloud: LinesightProcess;
let httpUrl: string;
const agents: LinesightProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-e2e-tls-'));
  ca = await makeTestCa(join(dir, 'pki'), 'server-ca');
  deviceCa = await makeTestCa(join(dir, 'pki'), 'device-ca');
  const server = await ca.issue('cloud');
  const started = await startCloudProcess({
    dataDir: join(dir, 'cloud'),
    adminToken,
    args: [
      '--tls-cert',
      server.certPath,
      '--tls-key',
      server.keyPath,
      '--tls-ca',
      ca.certPath,
      '--tls-client-ca',
      deviceCa.certPath,
    ],
    readyTimeoutMs: 120_000,
  });
  ({ process: cloud, httpUrl } = started);
  const ready = started.ready;
  expect(httpUrl).toMatch(/^https:/);
  expect(ready.mqttUrl).toMatch(/^mqtts:/);
}, 180_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await cloud?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** `linesight device provision` over HTTPS, trusting the CA as the docs say; returns the device.json path. */
async function provision(id: string): Promise<string> {
  const out = join(dir, `agent-${id}`, 'device.json');
  await runLinesight(
    ['device', 'provision', '--id', id, '--out', out, '--cloud', httpUrl, '--token', adminToken],
    { NODE_EXTRA_CA_CERTS: ca.certPath },
  );
  return out;
}

function startAgent(id: string, extra: string[] = []): LinesightProcess {
  const agent = new LinesightProcess([
    'agent',
    '--device-id',
    id,
    '--data-dir',
    join(dir, `agent-${id}`),
    '--camera',
    'synthetic:7',
    '--fps',
    '2',
    ...extra,
  ]);
  agents.push(agent);
  return agent;
}

const connected = (l: LogLine) => l.msg === 'mqtt connected';

describe('TLS between real processes', () => {
  it('an agent pins the CA from provisioning and connects over mqtts', async () => {
    const path = await provision('tls-e2e-1');
    const creds = JSON.parse(await readFile(path, 'utf8')) as { caPem?: string };
    expect(creds.caPem).toBe(await readFile(ca.certPath, 'utf8'));
    const agent = startAgent('tls-e2e-1');
    const line = await agent.waitForLog(connected, 120_000);
    expect(line.mqttUrl).toMatch(/^mqtts:/);
  }, 180_000);

  it('an agent with a client certificate and no password logs in', async () => {
    const path = await provision('tls-e2e-2');
    const creds = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    delete creds.password;
    await writeFile(path, JSON.stringify(creds));
    const cert = await deviceCa.issue('tls-e2e-2', { client: true });
    const agent = startAgent('tls-e2e-2', [
      '--client-cert',
      cert.certPath,
      '--client-key',
      cert.keyPath,
    ]);
    await agent.waitForLog(connected, 120_000);
  }, 180_000);

  it('a certificate naming another device is refused, and the cloud says why', async () => {
    const path = await provision('tls-e2e-3');
    const creds = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    delete creds.password;
    await writeFile(path, JSON.stringify(creds));
    const cert = await deviceCa.issue('tls-e2e-2', { client: true });
    const agent = startAgent('tls-e2e-3', [
      '--client-cert',
      cert.certPath,
      '--client-key',
      cert.keyPath,
    ]);
    const refused = await cloud.waitForLog(
      (l) => l.msg === 'mqtt authentication failed' && l.clientId === 'tls-e2e-3',
      120_000,
    );
    expect(refused.certificateNames).toEqual(['tls-e2e-2', 'tls-e2e-2']);
    // It keeps running (scoring offline) and never logged in.
    await agent.waitForLog((l) => l.msg === 'agent started', 120_000);
    expect(agent.lines.some(connected)).toBe(false);
  }, 180_000);
});
