// Agent resilience (a `linesight agent` process): a version after which the agent keeps
// restarting before it runs stably is quarantined at the next start, and the agent runs
// the last-known-good version though desired state still names the quarantined one. The
// rig signs the assignments (test/helpers/resilience-setup.ts).
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '@linesight/testkit/eventually';
import { ResilienceRig, modelLiveLog, startedVersion } from '../helpers/resilience-setup.ts';

const models = inject('models');
let rig: ResilienceRig;

beforeAll(async () => {
  rig = await ResilienceRig.start('crash-loop');
});
afterEach(() => rig.afterEach());
afterAll(() => rig?.close());

describe('agent resilience: crash loop', () => {
  it('quarantines a version that crash-loops the agent and runs last-known-good', async () => {
    const id = 'crasher';
    const [v1, v2] = await Promise.all([
      rig.assignmentOf('1.0.0', models.v1),
      rig.assignmentOf('2.0.0', models.v2),
    ]);
    await rig.provision(id);
    // First make 1.0.0 stable (it has to run a second without a restart).
    let agent = await rig.startAgent(id, { seed: 14, fps: 5, args: ['--stable-after', '1'] });
    await rig.setDesired(id, { model: v1 });
    await rig.waitForFramesOn(id, '1.0.0', 2);
    await eventually(async () => ((await rig.readState(id)).stable ? true : undefined), {
      what: '1.0.0 stable',
    });
    await rig.stopCleanly(agent);

    const args = ['--stable-after', '120', '--crash-loop-starts', '3'];
    agent = await rig.startAgent(id, { seed: 14, fps: 5, args });
    await rig.setDesired(id, { model: v2 });
    await agent.waitForLog(modelLiveLog('2.0.0'), 60_000);
    await rig.kill9(agent);
    // Two more starts on 2.0.0, each killed soon after it went live.
    for (let start = 1; start <= 2; start++) {
      agent = await rig.startAgent(id, { seed: 14, fps: 5, args });
      await agent.waitForLog(modelLiveLog('2.0.0'), 60_000);
      expect((await rig.readState(id)).startsSinceActivation).toBe(start);
      await rig.kill9(agent);
    }
    // The third start quarantines 2.0.0 and comes back on 1.0.0, though desired state still names 2.0.0.
    const resultsBefore = rig.results(id).length;
    agent = await rig.startAgent(id, { seed: 14, fps: 5, args });
    expect(startedVersion(agent)).toBe('1.0.0');
    const state = await eventually(
      () => {
        const r = rig.reported(id);
        return r?.lastError?.code === 'ERR_AGENT_CRASH_LOOP' && r.model?.version === '1.0.0'
          ? r
          : undefined;
      },
      { what: 'crash loop reported' },
    );
    expect(state.lastError?.model?.version).toBe('2.0.0');
    // The quarantine itself (decided while restoring, before MQTT is up) reaches the cloud as an event.
    const quarantine = await eventually(
      () =>
        (rig.observer.events.get(id) ?? []).find(
          (e) => e.code === 'ERR_AGENT_CRASH_LOOP' && /restarted 3 times/.test(e.message),
        ),
      { what: 'crash-loop event from the restart' },
    );
    expect(quarantine.model?.version).toBe('2.0.0');
    await rig.waitForFramesOn(id, '1.0.0', 5);
    const stored = await rig.readState(id);
    expect(stored.quarantined).toContain(v2.signed.manifest.sha256);
    expect(stored.active?.manifest.version).toBe('1.0.0');
    expect(agent.lines.some(modelLiveLog('2.0.0'))).toBe(false);
    const since = rig.results(id).slice(resultsBefore);
    expect(since.length).toBeGreaterThanOrEqual(5);
    expect(since.filter((r) => r.model?.version === '2.0.0')).toEqual([]);
    await rig.stopCleanly(agent);
  });
});
