// End-to-end: the line guard keeps the line answered while the scoring process
// restarts. `linesight agent --line-guard` owns a synthetic camera and the plant
// MQTT output (Debian's mosquitto on a free port; aedes where it is missing); it
// forks the agent as its worker. The worker is killed with SIGKILL: every frame
// still gets exactly one verdict at the plant broker, in frame order; the frames
// of the restart are `unknown` (agent-restarting) and never `good`; scored
// verdicts resume on the new worker, and the cloud's verdict log holds the
// guard's unknowns, written by the new worker.
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { Cloud } from '@linesight/cloud';
import {
  CHANNEL_SCHEMAS,
  decodePayload,
  type FrameResult,
  type VerdictRecord,
} from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess, type LogLine } from '../helpers/linesight-process.ts';
import { startPlantBroker, type PlantBroker } from '../helpers/plant-broker.ts';

const models = inject('models');
const DEVICE = 'guard-1';

let dir: string;
let cloud: Cloud;
let cloudUrls: { http: string; mqtt: string };
let broker: PlantBroker;
let plant: MqttClient;
const received: FrameResult[] = [];
let guardProcess: LinesightProcess | undefined;

/** A `good` the line may act on: a model, a finite score under the threshold, no reason. */
function isScoredGood(r: FrameResult): boolean {
  return (
    r.model !== null &&
    typeof r.score === 'number' &&
    Number.isFinite(r.score) &&
    typeof r.threshold === 'number' &&
    r.score < r.threshold &&
    r.reason === undefined
  );
}

const workerReady = (exceptPid?: number) => (l: LogLine) =>
  l.msg === 'guard worker ready' && l.workerPid !== exceptPid;

async function cloudRecords(): Promise<VerdictRecord[]> {
  const res = await fetch(`${cloudUrls.http}/v1/edge/verdicts?deviceId=${DEVICE}&limit=10000`, {
    headers: { authorization: `Bearer ${cloud.adminToken.token}` },
  });
  if (!res.ok) throw new Error(`GET /v1/edge/verdicts: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { records: VerdictRecord[] }).records;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-line-guard-'));
  broker = await startPlantBroker();
  plant = await mqtt.connectAsync(broker.url, {
    clientId: `plant-observer-${process.pid}`,
    reconnectPeriod: 0,
  });
  plant.on('message', (_topic, payload) =>
    received.push(decodePayload(CHANNEL_SCHEMAS.results, payload, 'plant verdict')),
  );
  await plant.subscribeAsync(`linesight/line/${DEVICE}/verdicts`, { qos: 1 });
  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud') },
    pino({ level: 'warn' }),
  );
  cloudUrls = await cloud.start();
  const api = new CloudApiClient({ baseUrl: cloudUrls.http, adminToken: cloud.adminToken.token });
  await api.publishModel({ name: 'line', version: '1.0.0', onnx: await readFile(models.v1) });
  const creds = await api.provisionDevice(DEVICE);
  await writeDeviceCredentials(join(dir, 'agents', DEVICE, 'device.json'), creds);
  await api.createRollout({ model: 'line', version: '1.0.0', devices: [DEVICE] });
});

afterAll(async () => {
  await guardProcess?.stop();
  await plant?.endAsync(true);
  await cloud?.close();
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts `linesight agent --line-guard` on the plant broker; resolves with its HTTP URL and first worker pid. */
async function startGuard(): Promise<{
  guard: LinesightProcess;
  httpUrl: string;
  workerPid: number;
}> {
  const configFile = join(dir, 'line.json');
  await writeFile(
    configFile,
    JSON.stringify({ http: { port: 0 }, outputs: [{ kind: 'mqtt', url: broker.url, qos: 1 }] }),
  );
  const guard = new LinesightProcess([
    'agent',
    '--line-guard',
    '--device-id',
    DEVICE,
    '--cloud',
    cloudUrls.http,
    '--mqtt',
    cloudUrls.mqtt,
    '--camera',
    'synthetic:7',
    '--fps',
    '10',
    '--data-dir',
    join(dir, 'agents', DEVICE),
    '--config',
    configFile,
    '--telemetry-interval',
    '1',
    '--crash-loop-starts',
    '50',
  ]);
  guardProcess = guard;
  const listening = await guard.waitForLog((l) => l.msg === 'agent http endpoint listening');
  await guard.waitForLog((l) => l.msg === 'line guard started', 90_000);
  const first = await guard.waitForLog(workerReady(), 120_000);
  return { guard, httpUrl: String(listening.url), workerPid: Number(first.workerPid) };
}

/** True while the process runs (a zombie left to a container's init that never reaps it is gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

describe('line guard (agent --line-guard)', () => {
  it('kill -9 of the worker: one verdict per frame, in order, unknown while it restarts, never an unscored good; the verdict log gets the unknowns', async () => {
    const { guard, httpUrl, workerPid: firstPid } = await startGuard();
    expect(firstPid).not.toBe(guard.child.pid);
    // Scoring: a scored verdict at the line.
    await eventually(() => (received.some((r) => r.verdict !== 'unknown') ? true : undefined), {
      what: 'a scored verdict at the plant broker',
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    const health = (await (await fetch(`${httpUrl}/healthz`)).json()) as {
      guard?: { workerPid: number | null };
    };
    expect(health.guard?.workerPid).toBe(firstPid);

    const killedAtMs = Date.now();
    process.kill(firstPid, 'SIGKILL');
    await guard.waitForLog((l) => l.msg === 'guard worker exited' && l.workerPid === firstPid);
    const second = await guard.waitForLog(workerReady(firstPid), 120_000);
    const readyAtMs = Number(second.time);
    await eventually(
      () =>
        received.some((r) => r.verdict !== 'unknown' && Date.parse(r.capturedAt) > readyAtMs)
          ? true
          : undefined,
      { what: 'scored verdicts again after the restart', timeoutMs: 120_000, intervalMs: 50 },
    );
    // Rows are forwarded while the worker runs: the guard's unknowns reach the cloud.
    const restarting = () =>
      received.filter((r) => r.reason?.startsWith('agent-restarting: ') === true);
    await eventually(
      async () => {
        const logged = new Set(
          (await cloudRecords())
            .filter((r) => r.reason?.startsWith('agent-restarting: ') === true)
            .map((r) => r.frameSeq),
        );
        return restarting().every((r) => logged.has(r.seq)) ? true : undefined;
      },
      {
        what: "the guard's unknowns in the cloud's verdict log",
        timeoutMs: 60_000,
        intervalMs: 250,
      },
    );

    expect(await guard.stop(60_000)).toBe(0);
    const stopped = await guard.waitForLog((l) => l.msg === 'line guard stopped');
    const captured = (stopped.frames as { captured: number }).captured;
    // Everything written before the outputs closed reaches the subscriber (QoS 1).
    await eventually(() => (received.length >= captured ? true : undefined), {
      what: `${captured} verdicts at the plant broker`,
      timeoutMs: 30_000,
      intervalMs: 50,
    });

    const kinds = (list: FrameResult[]) =>
      list.reduce<Record<string, number>>((acc, r) => {
        const key = r.verdict === 'unknown' ? (r.reason ?? '').split(':')[0]! : r.verdict;
        acc[key] = (acc[key] ?? 0) + 1;
        return acc;
      }, {});
    console.log(
      `line guard: ${captured} frames, worker down ${readyAtMs - killedAtMs} ms, verdicts ${JSON.stringify(kinds(received))}`,
    );
    // Exactly one verdict per frame, in frame order.
    expect(received.map((r) => r.seq)).toEqual([...Array(captured).keys()]);
    // Never a good the worker did not score.
    for (const r of received)
      if (r.verdict === 'good') expect(isScoredGood(r), `frame ${r.seq}`).toBe(true);
    // The restart's frames: unknown, no model, with the reason; some during the outage.
    const duringRestart = restarting().filter(
      (r) => Date.parse(r.capturedAt) >= killedAtMs && Date.parse(r.capturedAt) < readyAtMs,
    );
    expect(duringRestart.length).toBeGreaterThan(0);
    for (const r of restarting()) {
      expect(r.verdict).toBe('unknown');
      expect(r.model).toBeNull();
      expect(r.score).toBeNull();
    }
    expect(duringRestart[0]!.reason).toMatch(
      new RegExp(`^agent-restarting: worker (${firstPid} exited \\(SIGKILL\\)|\\d+ starting)`),
    );
    // Scored verdicts on both sides of the kill.
    const scoredAt = received
      .filter((r) => r.verdict !== 'unknown')
      .map((r) => Date.parse(r.capturedAt));
    expect(scoredAt.some((t) => t < killedAtMs)).toBe(true);
    expect(scoredAt.some((t) => t > readyAtMs)).toBe(true);
    // The second worker was told the guard's unknowns and wrote them down.
    expect(guard.lines.some((l) => l.msg === 'guard unknowns written to the verdict log')).toBe(
      true,
    );
  });

  it('a guard killed with SIGKILL takes its worker with it', async () => {
    const { guard, workerPid } = await startGuard();
    expect(alive(workerPid)).toBe(true);
    guard.child.kill('SIGKILL');
    await guard.exited;
    await eventually(() => (alive(workerPid) ? undefined : true), {
      what: `worker ${workerPid} gone after its guard was killed`,
      timeoutMs: 60_000,
      intervalMs: 100,
    });
  });
});
