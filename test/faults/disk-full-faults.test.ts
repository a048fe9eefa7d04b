// Disk full on the device, as a fault with figures: the agent's data folder
// on a real 24 MiB tmpfs, an update that does not fit is refused while the
// line keeps its verdicts, and a restart with the disk filled by a partial
// download starts and scores. Mounting needs root; elsewhere this file is
// skipped with a message (test/e2e/disk-full.test.ts and the agent's unit
// tests cover the same paths).
import { execFileSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sha256Hex } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { mountTmpfs, type Tmpfs } from '@linesight/testkit/tmpfs';
import { FleetObserver } from '../helpers/observer.ts';
import { withPadding } from '../helpers/onnx-mutations.ts';
import { FaultRig } from './fault-rig.ts';
import { recordFault } from './fault-report.ts';

const models = inject('models');
const ID = 'full-1';
const DISK_BYTES = 24 * 1024 * 1024;
const rig = new FaultRig();
const observer = new FleetObserver();
let disk: Tmpfs | undefined;

const canMount = process.getuid?.() === 0;
if (!canMount)
  console.warn('disk-full faults skipped: mounting a tmpfs needs root (CI runs as root)');

beforeAll(async () => {
  if (!canMount) return;
  await rig.start(models.v1);
  await observer.start(rig.mqttUrl, rig.adminToken);
  const dir = join(rig.dir, 'agents', ID);
  await mkdir(dir, { recursive: true });
  disk = mountTmpfs(dir, DISK_BYTES);
  if (disk === undefined) throw new Error(`could not mount a tmpfs on ${dir}`);
  await rig.provision([ID]);
});

afterAll(async () => {
  await rig.devices.get(ID)?.agent?.stop();
  await observer.close();
  disk?.unmount();
  await rig.close();
});

describe.runIf(canMount)('disk full on the device (a real 24 MiB tmpfs)', () => {
  it('an update that does not fit is refused, the line keeps its verdicts; a restart on a disk filled by a partial file scores', async () => {
    const d = rig.device(ID);
    const agent = await rig.startAgent(ID, ['--stable-after', '3600']);
    await agent.waitForLog((l) => l.msg === 'model live', 180_000);
    const fromMs = Date.now();
    const big = withPadding(new Uint8Array(await readFile(models.v2)), 20 * 1024 * 1024, 'big');
    await rig.api.publishModel({ name: 'line', version: '2.0.0', onnx: big });
    const rolloutAt = Date.now();
    await rig.api.createRollout({
      model: 'line',
      version: '2.0.0',
      devices: [ID],
      waves: [{ percent: 100, soakSec: 0 }],
    });
    await eventually(
      () =>
        observer.reported.get(ID)?.lastError?.code === 'ERR_AGENT_DISK_FULL' ? true : undefined,
      { what: 'the refusal reported', timeoutMs: 180_000, intervalMs: 100 },
    );
    const refusedAt = Date.now();
    await rig.lineCaughtUp([ID], refusedAt + 2000);

    // What a download that filled the disk before the agent died leaves behind.
    await rig.kill9Agent(ID);
    const killedAt = Date.now();
    const part = join(d.dataDir, 'models', `${sha256Hex(new Uint8Array([1]))}.onnx.part`);
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${part}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops with "No space left on device": the disk is full.
    }
    await rig.startAgent(ID, ['--stable-after', '3600']);
    const backAt = await eventually(
      () =>
        rig.tap
          .of(ID)
          .some(
            (v) => Date.parse(v.result.capturedAt) >= killedAt && v.result.verdict !== 'unknown',
          )
          ? Date.now()
          : undefined,
      { what: 'scoring after the restart on a full disk', timeoutMs: 180_000, intervalMs: 50 },
    );
    const toMs = backAt + 2000;
    await rig.lineCaughtUp([ID], toMs);
    const [availability] = rig.availability([ID], fromMs, toMs);
    const rec = await rig.recordFigures(ID, [...d.killedBoots], { beforeMs: toMs });
    await recordFault({
      fault: 'disk full: update refused, then kill -9 with a full disk',
      devices: 1,
      faultSec: 0,
      recoverySec: (backAt - killedAt) / 1000,
      recordsLost: rec.lost,
      recordsLostInFlight: rec.lostInFlight,
      recordsDuplicated: rec.duplicated,
      availability: availability!,
      notes: `refusal reported ${((refusedAt - rolloutAt) / 1000).toFixed(1)} s after the rollout; scoring ${((backAt - killedAt) / 1000).toFixed(1)} s after the kill with the disk full`,
    });
    expect(availability!.unscoredGood).toBe(0);
    expect(rec.lost).toBe(0);
    expect(rec.duplicated).toBe(0);
  });
});
