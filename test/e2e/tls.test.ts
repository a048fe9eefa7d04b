// A cloud process serving HTTPS and mqtts from certificate files, an operator
// provisioning through it with NODE_EXTRA_CA_CERTS, and real agent processes:
// one pinning the CA from provisioning with its password, one logging in with a
// client certificate and no password, one whose certificate names another id.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudFetch } from '@linesight/agent';
import { CloudApiClient } from '@linesight/api-client';
import { eventually } from '@linesight/testkit/eventually';
import { meanScoreOnnx } from '@linesight/testkit/onnx';
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

  it('a simulated fleet (sim --ca) provisions over HTTPS trusting the CA alone, and its devices connect over mqtts', async () => {
    const sim = new LinesightProcess([
      'sim',
      '--devices',
      '2',
      '--id-prefix',
      'tls-sim',
      '--data-dir',
      join(dir, 'sim'),
      '--cloud',
      httpUrl,
      '--token',
      adminToken,
      '--ca',
      ca.certPath,
      '--fps',
      '2',
      '--log-level',
      'info',
    ]);
    agents.push(sim);
    for (const id of ['tls-sim-001', 'tls-sim-002']) {
      const line = await sim.waitForLog((l) => connected(l) && l.deviceId === id, 120_000);
      expect(line.mqttUrl).toMatch(/^mqtts:/);
    }
  }, 180_000);

  it('sim without the CA refuses the cloud and says it is the certificate', async () => {
    const sim = new LinesightProcess([
      'sim',
      '--devices',
      '1',
      '--id-prefix',
      'tls-sim-noca',
      '--data-dir',
      join(dir, 'sim-noca'),
      '--cloud',
      httpUrl,
      '--token',
      adminToken,
    ]);
    agents.push(sim);
    expect(await sim.exited).not.toBe(0);
    expect(sim.text.join('\n')).toMatch(/cannot reach the cloud at https:.*certificate/i);
  }, 120_000);

  it('the demo (demo --tls-cert) serves HTTPS and mqtts, and its simulated devices pin the CA and score', async () => {
    const demoDir = join(dir, 'demo');
    await mkdir(demoDir, { recursive: true });
    // A ready model where the demo keeps its own, so it does not train one first.
    await writeFile(
      join(demoDir, 'surface-defects-1.0.0.onnx'),
      meanScoreOnnx({ side: 32, threshold: 0.9 }),
    );
    const server = await ca.issue('demo');
    const demo = new LinesightProcess([
      'demo',
      '--http-port',
      '0',
      '--mqtt-port',
      '0',
      '--devices',
      '1',
      '--fps',
      '2',
      '--data-dir',
      demoDir,
      '--tls-cert',
      server.certPath,
      '--tls-key',
      server.keyPath,
      '--tls-ca',
      ca.certPath,
    ]);
    agents.push(demo);
    const banner = await eventually(
      () => (demo.text.some((l) => l.includes('Ctrl-C stops everything')) ? demo.text : undefined),
      { what: 'the demo banner', timeoutMs: 120_000 },
    );
    const api = banner.find((l) => l.includes('REST API'));
    const demoUrl = /(https:\/\/\S+)\/v1/.exec(api ?? '')?.[1];
    expect(demoUrl, banner.join('\n')).toBeDefined();
    expect(banner.find((l) => l.includes('MQTT broker'))).toMatch(/mqtts:\/\//);
    expect(banner.find((l) => l.includes('TLS'))).toContain(ca.certPath);
    // Only the CA: the demo's own API answers to a client pinning it, and its device scores.
    const http = cloudFetch(demoUrl!, { caPem: await readFile(ca.certPath, 'utf8') });
    try {
      const token = (await readFile(join(demoDir, 'cloud', 'admin-token'), 'utf8')).trim();
      const client = new CloudApiClient({
        baseUrl: demoUrl!,
        adminToken: token,
        fetch: http.fetch,
      });
      await eventually(
        async () => {
          const d = (await client.listDevices()).find((x) => x.id === 'demo-001');
          return d?.online === true && d.phase === 'running' && d.framesProcessed > 0
            ? d
            : undefined;
        },
        { what: 'demo-001 online and scoring over TLS', timeoutMs: 120_000 },
      );
    } finally {
      await http.close();
    }
  }, 240_000);
});
