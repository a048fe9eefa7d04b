// `linesight agent` under systemd's notification protocol: the test binds an AF_UNIX
// datagram socket, passes it as NOTIFY_SOCKET with a WATCHDOG_USEC, as systemd does for
// a unit with Type=notify and WatchdogSec, and reads what the agent process sends: READY=1
// once started, WATCHDOG=1 pings while its frame loop runs, STOPPING=1 on SIGTERM. No
// cloud is needed: the agent starts and scores (as unknown, without a model) while it
// keeps trying to connect. The same with `--line-guard`, as manifests/systemd runs it: the
// guard is the main process and the one that notifies, through a kill -9 of its worker.
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDeviceCredentials } from '@linesight/agent';
import { generateSigningKeyPair } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';

interface DgramSocket {
  on(event: string, listener: (...args: unknown[]) => void): void;
  bind(path: string): void;
  close(): void;
}

let dir: string;
let socket: DgramSocket | undefined;
let agent: LinesightProcess | undefined;
const messages: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-sd-notify-'));
  const dgram = createRequire(import.meta.url)('unix-dgram') as {
    createSocket(type: 'unix_dgram'): DgramSocket;
  };
  socket = dgram.createSocket('unix_dgram');
  socket.on('message', (buf) => messages.push((buf as Buffer).toString()));
  socket.on('error', () => undefined);
  socket.bind(join(dir, 'notify.sock'));
});

afterAll(async () => {
  await agent?.stop();
  socket?.close();
  await rm(dir, { recursive: true, force: true });
});

async function credentials(deviceId: string): Promise<string> {
  const key = generateSigningKeyPair();
  const agentDir = join(dir, deviceId);
  await writeDeviceCredentials(join(agentDir, 'device.json'), {
    deviceId,
    username: deviceId,
    password: 'unused',
    trustedKeys: [{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }],
    // Nothing listens there: the agent runs on and retries in the background.
    cloudUrl: 'http://127.0.0.1:9',
    mqttUrl: 'mqtt://127.0.0.1:9',
  });
  return agentDir;
}

const pings = () => messages.filter((m) => m === 'WATCHDOG=1').length;

describe('agent under systemd notification', () => {
  it('sends READY=1, WATCHDOG=1 pings at half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM', async () => {
    const agentDir = await credentials('sd-line');
    agent = new LinesightProcess(
      ['agent', '--device-id', 'sd-line', '--camera', 'synthetic:4', '--fps', '10'].concat([
        '--data-dir',
        agentDir,
      ]),
      { NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '1000000' },
    );
    const ready = await eventually(() => messages.find((m) => m.split('\n').includes('READY=1')), {
      what: 'READY=1',
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    expect(ready).toContain('STATUS=scoring frames (sd-line)');
    const log = await agent.waitForLog((l) => l.msg === 'notified systemd: ready');
    expect(log).toMatchObject({ transport: 'unix-dgram', watchdogPingMs: 500 });
    await eventually(() => messages.filter((m) => m === 'WATCHDOG=1').length >= 3, {
      what: 'three watchdog pings',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    // READY comes first: no ping before the agent is up.
    expect(messages.findIndex((m) => m.startsWith('READY=1'))).toBe(0);
    expect(await agent.stop(), agent.exitReport()).toBe(0);
    await eventually(() => messages.some((m) => m.startsWith('STOPPING=1')), {
      what: 'STOPPING=1',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
  });

  it('with --line-guard: the guard notifies (READY=1, pings, STOPPING=1), its worker never does, and pings go on while the worker restarts', async () => {
    messages.length = 0;
    const agentDir = await credentials('sd-guard');
    agent = new LinesightProcess(
      ['agent', '--device-id', 'sd-guard', '--camera', 'synthetic:5', '--fps', '10'].concat([
        '--data-dir',
        agentDir,
        '--line-guard',
      ]),
      { NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '1000000' },
    );
    const ready = await eventually(() => messages.find((m) => m.split('\n').includes('READY=1')), {
      what: 'READY=1',
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    expect(ready).toContain('STATUS=line guard answering frames (sd-guard)');
    const worker = await agent.waitForLog((l) => l.msg === 'guard worker ready', 120_000);
    const workerPid = Number(worker.workerPid);
    expect(workerPid).not.toBe(agent.child.pid);
    await eventually(() => pings() >= 3, {
      what: 'three watchdog pings',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    // kill -9 of the worker: the guard answers the line alone and systemd sees it alive.
    process.kill(workerPid, 'SIGKILL');
    await agent.waitForLog((l) => l.msg === 'guard worker exited' && l.workerPid === workerPid);
    const before = pings();
    await eventually(() => pings() >= before + 3, {
      what: 'three watchdog pings after the worker was killed',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    await agent.waitForLog(
      (l) => l.msg === 'guard worker ready' && Number(l.workerPid) !== workerPid,
      120_000,
    );
    // One READY, from the guard: the workers (the agent itself) never notify.
    expect(messages.filter((m) => m.startsWith('READY=1'))).toHaveLength(1);
    expect(messages.findIndex((m) => m.startsWith('READY=1'))).toBe(0);
    expect(messages.some((m) => m.includes('STATUS=scoring frames'))).toBe(false);
    expect(await agent.stop(), agent.exitReport()).toBe(0);
    await eventually(() => messages.some((m) => m.startsWith('STOPPING=1')), {
      what: 'STOPPING=1',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    expect(messages.filter((m) => m.startsWith('STOPPING=1'))).toHaveLength(1);
  });
});
