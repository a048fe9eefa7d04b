import { createServer, type Server } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Cloud } from '@linesight/cloud';
import { CloudApiClient, type DeviceSummary } from '@linesight/api-client';
import { SimulatedFleet, SyntheticCamera } from '@linesight/firmware-sim';
import { summary } from './demo-command.ts';
import { eventually } from '@linesight/testkit/eventually';

const silent = pino({ level: 'silent' });

function device(over: Partial<DeviceSummary>): DeviceSummary {
  return {
    id: 'd',
    labels: {},
    online: true,
    lastSeen: null,
    phase: 'running',
    model: { name: 'm', version: '1.0.0' },
    desiredModel: null,
    framesProcessed: 100,
    framesCaptured: 100,
    defects: 10,
    fps: 5,
    lastError: null,
    ...over,
  };
}

describe('demo summary line', () => {
  it('counts frames/s only from devices online now', () => {
    const line = summary([
      device({ id: 'a', online: false, fps: 5 }),
      device({ id: 'b', online: false, fps: 4.5 }),
    ]);
    expect(line).toContain('devices 0/2 online');
    expect(line).toContain('| 0.0 frames/s |');
    expect(summary([device({ id: 'a' }), device({ id: 'b', online: false })])).toContain(
      'devices 1/2 online | 5.0 frames/s',
    );
  });
});

describe('a simulated fleet across cloud restarts on other ports', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function startCloud(dataDir: string): Promise<Cloud> {
    const cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir }, silent);
    closers.push(() => cloud.close());
    await cloud.start();
    return cloud;
  }

  async function startFleet(cloud: Cloud, dataDir: string): Promise<SimulatedFleet> {
    const fleet = new SimulatedFleet({
      cloudUrl: cloud.urls.http,
      adminToken: cloud.adminToken.token,
      devices: 2,
      idPrefix: 'restart',
      dataDir,
      camera: (i) => new SyntheticCamera({ seed: i, fps: 2, width: 64, height: 64 }),
      logger: silent,
    });
    closers.push(() => fleet.close());
    await fleet.start();
    return fleet;
  }

  async function allOnline(cloud: Cloud, ids: string[]): Promise<void> {
    const api = new CloudApiClient({
      baseUrl: cloud.urls.http,
      adminToken: cloud.adminToken.token,
    });
    await eventually(
      async () => {
        const list = await api.listDevices();
        return ids.every((id) => list.find((d) => d.id === id)?.online === true);
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `${ids.join(', ')} online` },
    );
  }

  it('reconnects the reused devices to the running broker, not the one device.json names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-demo-restart-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const cloudDir = join(dir, 'cloud');
    const fleetDir = join(dir, 'fleet');

    const first = await startCloud(cloudDir);
    const firstFleet = await startFleet(first, fleetDir);
    await allOnline(first, firstFleet.deviceIds);
    const firstMqtt = first.urls.mqtt;
    await firstFleet.close();
    await first.close();

    // Hold the first broker's port so the second cloud surely gets another one.
    const holder: Server = createServer();
    closers.push(() => new Promise((r) => holder.close(r)));
    await new Promise<void>((r) => holder.listen(Number(new URL(firstMqtt).port), '127.0.0.1', r));

    const second = await startCloud(cloudDir);
    expect(second.urls.mqtt).not.toBe(firstMqtt);
    const secondFleet = await startFleet(second, fleetDir);
    await allOnline(second, secondFleet.deviceIds);
    const stored = JSON.parse(
      await readFile(join(fleetDir, 'restart-001', 'device.json'), 'utf8'),
    ) as { mqttUrl: string; cloudUrl: string };
    expect(stored).toMatchObject({ mqttUrl: second.urls.mqtt, cloudUrl: second.urls.http });
  });
});
