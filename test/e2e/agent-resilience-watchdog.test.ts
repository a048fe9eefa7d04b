// Agent resilience (a `linesight agent` process): a model that hangs on real frames is
// contained by the watchdog (unknown verdicts within the limit, never a silent good), then
// by its circuit breaker (quarantined, the previous version back and scoring). The rig
// signs the assignments (test/helpers/resilience-setup.ts).
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { sha256Hex } from '@linesight/protocol';
import { WorkerOnnxModel, preprocessImage } from '@linesight/vision';
import { eventually } from '@linesight/testkit/eventually';
import type { LogLine } from '../helpers/linesight-process.ts';
import { withSlowSideChain } from '../helpers/onnx-mutations.ts';
import { ResilienceRig, median, modelLiveLog } from '../helpers/resilience-setup.ts';

const models = inject('models');
let rig: ResilienceRig;

beforeAll(async () => {
  rig = await ResilienceRig.start('watchdog');
});
afterEach(() => rig.afterEach());
afterAll(() => rig?.close());

async function firstImage(root: string): Promise<string> {
  const entries = await readdir(root, { recursive: true });
  const found = entries.find((e) => /\.(png|jpe?g)$/i.test(e));
  if (found === undefined) throw new Error(`no image under ${root}`);
  return join(root, found);
}

describe('agent resilience: watchdog and circuit breaker', () => {
  it('contains a model that hangs on real frames: unknown within the watchdog limit, never a silent good; the breaker opens and the previous version takes over', async () => {
    const v1 = await readFile(models.v1);
    // The slow branch is free on the golden inputs, so the cloud registers this file and the
    // device's golden check passes; on camera frames each run takes about half a second
    // (more than twice the watchdog limit, and short enough that the abandoned runs return
    // soon after, even on a busy machine).
    const slow = withSlowSideChain(v1, { size: 1024, steps: 50 });
    const registered = await rig.api.publishModel({ name: 'hang', version: '1.0.0', onnx: slow });
    expect(registered.sha256).toBe(sha256Hex(slow));
    // How long the model really needs on a camera frame, measured here, off the event loop.
    const frame = await readFile(await firstImage(models.dataset));
    const probe = await WorkerOnnxModel.load(slow);
    let slowRunMs: number;
    try {
      const input = await preprocessImage(frame, probe.contract.inputSpec);
      const t0 = performance.now();
      await probe.run(input);
      slowRunMs = performance.now() - t0;
    } finally {
      await probe.close();
    }

    const id = 'hanger';
    const watchdogMs = 200;
    const trips = 3;
    // A frame every 100 ms, less than the watchdog limit: while a run of the hanging model is
    // in the watchdog, the next frame is already preprocessed and holds that version's lease.
    // So the frame after the third trip meets an open breaker whatever the fallback's speed,
    // and the circuit-open checks below always have frames to check.
    const fps = 10;
    await rig.provision(id);
    const agent = await rig.startAgent(id, {
      seed: 12,
      fps,
      args: ['--watchdog-ms', String(watchdogMs), '--watchdog-trips', String(trips)],
    });
    await rig.setDesired(id, { model: await rig.assignment('line', '1.0.0', v1) });
    await rig.waitForFramesOn(id, '1.0.0', 3);

    const hang = await rig.assignment('line', '1.0.2-hang', slow);
    await rig.setDesired(id, { model: hang });
    const hangLive = await agent.waitForLog(modelLiveLog('1.0.2-hang'), 60_000);
    // After `trips` consecutive trips the breaker opens, the version is quarantined, and the
    // previous version (last-known-good) is live again, though desired state still names the hang.
    const opened = await agent.waitForLog(
      (l) => l.msg?.startsWith('circuit breaker open') === true,
      90_000,
    );
    const fallback = await agent.waitForLog(
      (l) => modelLiveLog('1.0.0')(l) && l.source === 'last-known-good',
      90_000,
    );
    const state = await eventually(
      () => {
        const r = rig.reported(id);
        return r?.lastError?.code === 'ERR_AGENT_WATCHDOG' && r.model?.version === '1.0.0'
          ? r
          : undefined;
      },
      { what: 'watchdog quarantine reported' },
    );
    expect(state.lastError?.model?.version).toBe('1.0.2-hang');
    expect(state.lastError?.message).toMatch(
      new RegExp(
        `^ERR_AGENT_WATCHDOG: watchdog: ${trips} consecutive runs over ${watchdogMs} ms on line@1\\.0\\.2-hang; quarantined, falling back to the last-known-good version line@1\\.0\\.0`,
      ),
    );
    const refusal = await eventually(
      () =>
        (rig.observer.events.get(id) ?? []).find(
          (e) => e.type === 'model.refused' && e.code === 'ERR_AGENT_WATCHDOG',
        ),
      { what: 'watchdog event' },
    );
    expect(refusal.model?.version).toBe('1.0.2-hang');
    // The line recovers on the previous version.
    await rig.waitForFramesOn(id, '1.0.0', 5);
    const stored = await rig.readState(id);
    expect(stored.quarantined).toContain(hang.signed.manifest.sha256);
    expect(stored.active?.manifest.version).toBe('1.0.0');

    // Desired state naming the hanging version again is refused, as for a crash-looping version.
    const again = await rig.setDesired(id, { model: hang });
    const refusedAgain = await eventually(
      () => {
        const r = rig.reported(id);
        return r?.desiredRevision === again.revision ? r : undefined;
      },
      { what: 'hang refused again' },
    );
    expect(refusedAgain.lastError?.code).toBe('ERR_AGENT_WATCHDOG');
    expect(refusedAgain.lastError?.message).toMatch(/quarantined on this device/);
    expect(refusedAgain.model?.version).toBe('1.0.0');
    await rig.waitForFramesOn(id, '1.0.0', 3);
    expect(agent.lines.filter(modelLiveLog('1.0.2-hang'))).toHaveLength(1);

    const fromHang = rig.results(id).filter((x) => x.model?.version === '1.0.2-hang');
    const circuitOpen = fromHang.filter((r) => r.reason?.startsWith('circuit-open') === true);
    const telemetry = await eventually(
      () => {
        const t = rig.observer.telemetry.get(id);
        return t !== undefined &&
          (t.watchdogTrips ?? 0) >= trips &&
          (t.circuitOpenFrames ?? 0) >= circuitOpen.length
          ? t
          : undefined;
      },
      {
        what: 'telemetry with watchdog trips and circuit-open frames',
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    );
    // The agent waits for the abandoned runs to return before it exits (exiting under a
    // thread inside native inference could abort the process).
    await rig.stopCleanly(agent, 60_000);

    // Never a verdict from the hanging model: the first `trips` frames were abandoned by the
    // watchdog, the rest (until the previous version was live) were not run at all.
    expect(fromHang.filter((r) => r.verdict !== 'unknown')).toEqual([]);
    expect(fromHang.every((r) => r.score === null)).toBe(true);
    const watchdogFrames = fromHang.slice(0, trips);
    expect(watchdogFrames).toHaveLength(trips);
    for (const r of watchdogFrames) expect(r.reason).toMatch(/watchdog/);
    expect(fromHang.slice(trips)).toEqual(circuitOpen);
    expect(circuitOpen.length).toBeGreaterThanOrEqual(1);
    for (const r of circuitOpen) {
      expect(r.reason).toMatch(/^circuit-open: line@1\.0\.2-hang/);
      expect(r.latencyMs.inference).toBe(0);
    }
    // The verdict never waited for the model: it came after the watchdog limit, well before the run's own time.
    const inference = watchdogFrames.map((r) => r.latencyMs.inference);
    expect(Math.min(...inference)).toBeGreaterThanOrEqual(watchdogMs * 0.9);
    expect(median(inference)).toBeLessThan(Math.max(slowRunMs, 5 * watchdogMs));
    expect(telemetry.watchdogTrips).toBeGreaterThanOrEqual(watchdogFrames.length);
    expect(telemetry.circuitOpenFrames).toBe(circuitOpen.length);
    // Every frame after the hanging version's last one went to the previous version, which
    // scored them. On a loaded machine one of its own runs may pass the 200 ms limit too (at
    // load 20 one took 225 ms): that frame is unknown from the watchdog, as it must be, not a
    // sign the hanging version ran.
    const all = rig.results(id);
    const lastHang = all.map((r) => r.model?.version).lastIndexOf('1.0.2-hang');
    const after = all.slice(lastHang + 1);
    expect(after.filter((r) => r.model?.version !== '1.0.0')).toEqual([]);
    const slowOnPrevious = after.filter((r) => r.verdict === 'unknown');
    expect(slowOnPrevious.filter((r) => !/^ERR_MODEL_WATCHDOG/.test(r.reason ?? ''))).toEqual([]);
    expect(after.length - slowOnPrevious.length).toBeGreaterThanOrEqual(5);

    const t = (l: LogLine) => Number(l.time);
    console.log(
      `[hang] model run on a frame ${slowRunMs.toFixed(0)} ms; ${fps} fps; watchdog ${watchdogMs} ms, breaker at ${trips} trips; ` +
        `watchdog frames ${watchdogFrames.length} (inference ${inference.map((ms) => ms.toFixed(0)).join(', ')} ms); ` +
        `hang live -> breaker open ${t(opened) - t(hangLive)} ms, -> last-known-good live ${t(fallback) - t(hangLive)} ms; ` +
        `circuit-open frames before the fallback ${circuitOpen.length}; telemetry watchdogTrips ${telemetry.watchdogTrips}, circuitOpenFrames ${telemetry.circuitOpenFrames}`,
    );
  });
});
