import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { Cloud } from '@linesight/cloud';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import { FleetObserver } from '../helpers/observer.ts';

const SWAPS = 100;
const ID = 'swapper';
const models = inject('models');

let dir: string;
let cloud: Cloud;
let api: CloudApiClient;
let agent: LinesightProcess;
const observer = new FleetObserver();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-swap-'));
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud') },
    pino({ level: 'warn' }),
  );
  const urls = await cloud.start();
  api = new CloudApiClient({ baseUrl: urls.http, adminToken: cloud.adminToken.token });
  await observer.start(urls.mqtt, cloud.adminToken.token);
  await api.publishModel({ name: 'swap', version: '1.0.0', onnx: await readFile(models.v1) });
  await api.publishModel({ name: 'swap', version: '1.1.0', onnx: await readFile(models.v2) });
  const creds = await api.provisionDevice(ID);
  await writeDeviceCredentials(join(dir, 'agent', 'device.json'), {
    ...creds,
    cloudUrl: urls.http,
  });
  agent = new LinesightProcess([
    'agent',
    '--device-id',
    ID,
    '--cloud',
    urls.http,
    '--mqtt',
    urls.mqtt,
    '--camera',
    'synthetic:5',
    '--fps',
    '30',
    '--data-dir',
    join(dir, 'agent'),
    '--telemetry-interval',
    '1',
  ]);
  await agent.waitForLog((l) => l.msg === 'agent started');
});

afterAll(async () => {
  await agent?.stop();
  await observer.close();
  await cloud?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The version of the newest result the agent published. */
function newestVersion(): string | undefined {
  return observer.results.get(ID)?.at(-1)?.model?.version;
}

describe('hot swap under load', () => {
  it(`swaps ${SWAPS} times at 30 frames/s, scoring every frame exactly once`, async () => {
    await api.createRollout({ model: 'swap', version: '1.0.0' });
    await eventually(() => (newestVersion() === '1.0.0' ? true : undefined), {
      what: 'first model live',
      timeoutMs: 60_000,
      intervalMs: 20,
    });
    for (let i = 1; i <= SWAPS; i++) {
      const version = i % 2 === 1 ? '1.1.0' : '1.0.0';
      await api.createRollout({ model: 'swap', version, devices: [ID] });
      // The swap has happened when a frame scored by the new version reaches the line.
      await eventually(() => (newestVersion() === version ? true : undefined), {
        what: `swap ${i} to ${version}`,
        timeoutMs: 30_000,
        intervalMs: 10,
      });
    }
    expect(await agent.stop(), agent.exitReport()).toBe(0);
    // A stopping agent publishes its last results, then its final state, then its offline
    // status, in that order on one connection: once the status is here, so is the rest.
    await eventually(() => observer.status.get(ID)?.online === false, {
      what: 'offline status after the final state',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const final = observer.reported.get(ID)!;
    const results = observer.results.get(ID)!;
    const seqs = results.map((r) => r.seq);
    const missing = Array.from({ length: final.frames.captured }, (_, i) => i).filter(
      (i) => !seqs.includes(i),
    );
    // On a failure, say what the agent counted and how often its MQTT link (re)connected:
    // results go at QoS 0, so a frame lost with a dropped connection is told apart from one
    // the agent never published.
    const connects = agent.lines.filter((l) => l.msg === 'mqtt connected').length;
    expect(
      { missing: missing.slice(0, 20), missingCount: missing.length },
      JSON.stringify({ results: results.length, frames: final.frames, connects }),
    ).toEqual({ missing: [], missingCount: 0 });
    // Every frame the camera delivered was published exactly once, in order.
    expect(results.map((r) => r.seq)).toEqual(
      Array.from({ length: final.frames.captured }, (_, i) => i),
    );
    expect(final.frames.droppedOverload).toBe(0);
    // After the first model arrived no frame went without a verdict, and each names the version that scored it.
    const first = results.findIndex((r) => r.model !== null);
    const scored = results.slice(first);
    expect(
      scored.every(
        (r) =>
          r.verdict !== 'unknown' && (r.model?.version === '1.0.0' || r.model?.version === '1.1.0'),
      ),
    ).toBe(true);
    expect(final.frames.scored).toBe(scored.length);
    // The versions form SWAPS + 1 alternating runs: each swap happened between two frames, once.
    let runs = 1;
    for (let i = 1; i < scored.length; i++)
      if (scored[i]!.model!.version !== scored[i - 1]!.model!.version) runs++;
    expect(runs).toBe(SWAPS + 1);
    const byVersion = final.framesByVersion;
    expect((byVersion['1.0.0'] ?? 0) + (byVersion['1.1.0'] ?? 0)).toBe(final.frames.scored);
  });
});
