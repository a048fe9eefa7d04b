// The real agent on linux/arm64 (a Raspberry Pi 4/5's CPU), emulated here with qemu-user: the
// official arm64 Node binary runs the compiled release with its native packages (sharp, libvips,
// onnxruntime-node, better-sqlite3) built for arm64, against the x86_64 cloud of this checkout.
// It must score frames, swap to a second model the cloud rolls out, and forward its verdicts
// and telemetry windows to the cloud. See scripts/arm64-env.ts for how the environment is made
// (minutes the first time, then cached) and docs/edge-install.md for what it proves.
//
// Emulation runs the agent many times slower than a real core, so every wait is on an event or
// a poll with a deadline of minutes; nothing here measures time.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import type { TelemetryWindow, VerdictRecord } from '@linesight/protocol';
import { buildRelease, type BuiltRelease } from '../../scripts/build-release.ts';
import { arm64NodeCommand, ensureArm64Env, type Arm64Env } from '../../scripts/arm64-env.ts';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import { FleetObserver } from '../helpers/observer.ts';

const models = inject('models');
const ID = 'pi-line';
const TOKEN = randomBytes(24).toString('hex');
const MINUTE = 60_000;

let dir: string;
let env: Arm64Env;
let release: BuiltRelease;
let cloud: LinesightProcess | undefined;
let agent: LinesightProcess | undefined;
const observer = new FleetObserver();

/** VmRSS and VmHWM of a process, in MB, from the host's /proc (for qemu: guest plus emulator). */
async function memoryOf(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakMb: Math.round(kb('VmHWM') / 1024) };
}

beforeAll(async () => {
  env = await ensureArm64Env({ log: (line) => process.stderr.write(`${line}\n`) });
  dir = await mkdtemp(join(tmpdir(), 'linesight-arm64-'));
  // The compiled release, its third-party dependencies the arm64 ones.
  release = await buildRelease({
    outDir: join(dir, 'out'),
    linkDeps: true,
    depsFrom: env.nodeModules,
  });
});

afterAll(async () => {
  await agent?.stop(MINUTE);
  await observer.close();
  await cloud?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('the agent on linux/arm64 under qemu', () => {
  it('scores frames, swaps its model and forwards its data to the x86_64 cloud', async () => {
    cloud = new LinesightProcess(
      ['cloud', '--http-port', '0', '--mqtt-port', '0', '--data-dir', join(dir, 'cloud')],
      { LINESIGHT_ADMIN_TOKEN: TOKEN },
    );
    const ready = await cloud.waitForLog((l) => typeof l.httpUrl === 'string', 2 * MINUTE);
    const httpUrl = ready.httpUrl as string;
    const mqttUrl = ready.mqttUrl as string;
    const api = new CloudApiClient({ baseUrl: httpUrl, adminToken: TOKEN });
    await observer.start(mqttUrl, TOKEN);
    await api.publishModel({ name: 'pi', version: '1.0.0', onnx: await readFile(models.v1) });
    const creds = await api.provisionDevice(ID);
    const agentDir = join(dir, 'agent');
    await writeDeviceCredentials(join(agentDir, 'device.json'), {
      ...creds,
      cloudUrl: httpUrl,
      mqttUrl,
    });

    agent = new LinesightProcess(
      [
        'agent',
        '--device-id',
        ID,
        '--camera',
        'synthetic:5',
        '--fps',
        '5',
        '--data-dir',
        agentDir,
        '--telemetry-interval',
        '2',
        '--window-sec',
        '5',
        // The default 2 s inference watchdog refuses every model under emulation (its golden
        // check trips it): this test is about running on arm64, not about emulated speed.
        '--watchdog-ms',
        '600000',
      ],
      { NODE_OPTIONS: '' },
      { bin: release.bin, cwd: dir, node: arm64NodeCommand(env, []) },
    );
    const started = await agent.waitForLog((l) => l.msg === 'agent started', 10 * MINUTE);
    // The agent itself says which CPU it runs on: the emulated one.
    expect(started.arch).toBe('arm64');

    await api.createRollout({ model: 'pi', version: '1.0.0' });
    const scored = await eventually(
      () => {
        const done = (observer.results.get(ID) ?? []).filter(
          (r) => r.model?.version === '1.0.0' && r.verdict !== 'unknown',
        );
        return done.length >= 5 ? done : undefined;
      },
      { what: 'five frames scored by model 1.0.0 on arm64', timeoutMs: 10 * MINUTE },
    );
    expect(scored.every((r) => typeof r.score === 'number' && Number.isFinite(r.score))).toBe(true);

    // A second version, rolled out while the agent scores: it loads it beside the live one,
    // checks it and swaps between frames.
    await api.publishModel({ name: 'pi', version: '2.0.0', onnx: await readFile(models.v2) });
    await api.createRollout({ model: 'pi', version: '2.0.0' });
    await eventually(
      () => {
        const reported = observer.reported.get(ID);
        const after = (observer.results.get(ID) ?? []).filter(
          (r) => r.model?.version === '2.0.0' && r.verdict !== 'unknown',
        );
        return reported?.model?.version === '2.0.0' && after.length >= 3;
      },
      { what: 'model 2.0.0 reported and scoring on arm64', timeoutMs: 15 * MINUTE },
    );

    // The edge data: verdicts of both versions and telemetry windows reach the cloud's store.
    const get = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${httpUrl}${path}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
      return (await response.json()) as T;
    };
    const forwarded = await eventually(
      async () => {
        const { records } = await get<{ records: VerdictRecord[] }>(
          `/v1/edge/verdicts?deviceId=${ID}&limit=10000`,
        );
        const { windows } = await get<{ windows: TelemetryWindow[] }>(
          `/v1/edge/windows?deviceId=${ID}&limit=10000`,
        );
        const versions = new Set(records.map((r) => r.modelVersion));
        return versions.has('1.0.0') &&
          versions.has('2.0.0') &&
          windows.some((w) => w.counts.good + w.counts.defect > 0)
          ? { records, windows }
          : undefined;
      },
      { what: 'verdicts of both versions and a window forwarded', timeoutMs: 10 * MINUTE },
    );
    expect(forwarded.records.filter((r) => r.modelVersion === '2.0.0').length).toBeGreaterThan(0);

    // What can be measured honestly under emulation: memory (the host sees guest and emulator
    // together, an upper bound), the agent's own figure in its windows, and its threads.
    const memory = await memoryOf(agent.child.pid!);
    const threads = await readdir(`/proc/${agent.child.pid!}/task`);
    const last = forwarded.windows.at(-1)!;
    process.stderr.write(
      `${JSON.stringify({
        arm64Agent: {
          qemuRssMb: memory.rssMb,
          qemuPeakRssMb: memory.peakMb,
          reportedRssMb: last.rssMb,
          threads: threads.length,
          verdictsForwarded: forwarded.records.length,
        },
      })}\n`,
    );
    // Closing (frames in flight, the inference worker, the final state) is emulated too.
    const code = await agent.stop(5 * MINUTE);
    expect(
      code,
      `agent exit (${agent.child.signalCode}):\n${agent.text.slice(-15).join('\n')}`,
    ).toBe(0);
    expect(await cloud.stop(), cloud.exitReport()).toBe(0);
  });
});
