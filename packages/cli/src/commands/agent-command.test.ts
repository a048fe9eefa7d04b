import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgent, type AgentApp } from '@linesight/agent';
import { SyntheticCamera } from '@linesight/firmware-sim';
import { isLinesightError } from '@linesight/protocol';
import { deviceCommand } from './device-command.ts';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { eventually } from '@linesight/testkit/eventually';

let dir: string;
let cloud: TestCloud;
const agents: AgentApp[] = [];

beforeAll(async () => {
  cloud = await startTestCloud();
  dir = cloud.dir;
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await cloud?.close();
});

describe('provision with LINESIGHT_CLOUD, then an agent with no --cloud or --mqtt', () => {
  it('finds both in the device.json that provisioning wrote', async () => {
    const out = join(dir, 'agent-a', 'device.json');
    const before = process.env.LINESIGHT_CLOUD;
    process.env.LINESIGHT_CLOUD = cloud.httpUrl;
    try {
      await deviceCommand()
        .exitOverride()
        .parseAsync(['provision', '--id', 'cfg-a', '--out', out, '--token', cloud.adminToken], {
          from: 'user',
        });
    } finally {
      if (before === undefined) delete process.env.LINESIGHT_CLOUD;
      else process.env.LINESIGHT_CLOUD = before;
    }
    const creds = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    expect(creds).toMatchObject({ cloudUrl: cloud.httpUrl, mqttUrl: cloud.mqttUrl });

    const agent = await runAgent({
      deviceId: 'cfg-a',
      dataDir: join(dir, 'agent-a'),
      camera: new SyntheticCamera({ seed: 1, fps: 2, width: 64, height: 64 }),
      logLevel: 'silent',
    });
    agents.push(agent);
    await eventually(
      async () => (await cloud.api.listDevices()).some((d) => d.id === 'cfg-a' && d.online),
      { timeoutMs: 20_000, intervalMs: 100, what: 'cfg-a online' },
    );
  });

  it('says what is missing when device.json names no MQTT URL and none is given', async () => {
    const path = join(dir, 'agent-b', 'device.json');
    await mkdir(join(dir, 'agent-b'), { recursive: true });
    await writeFile(
      path,
      JSON.stringify({
        deviceId: 'cfg-b',
        username: 'cfg-b',
        password: 'x',
        trustedKeys: [],
        cloudUrl: 'http://127.0.0.1:1',
      }),
    );
    const err = await runAgent({
      deviceId: 'cfg-b',
      dataDir: join(dir, 'agent-b'),
      camera: new SyntheticCamera({ seed: 1 }),
      logLevel: 'silent',
    }).catch((e: unknown) => e);
    expect(isLinesightError(err, 'ERR_AGENT_CONFIG')).toBe(true);
    expect((err as Error).message).toContain('does not name the MQTT URL (--mqtt)');
  });
});
