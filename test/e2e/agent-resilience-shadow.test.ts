// Agent resilience (a `linesight agent` process): a shadow model runs beside the live one
// without changing a live verdict or score, and its agreement is reported in telemetry.
// The rig signs the assignments (test/helpers/resilience-setup.ts).
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { FrameResult, ModelAssignment } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { ResilienceRig, median } from '../helpers/resilience-setup.ts';

const models = inject('models');
let rig: ResilienceRig;

beforeAll(async () => {
  rig = await ResilienceRig.start('shadow');
});
afterEach(() => rig.afterEach());
afterAll(() => rig?.close());

describe('agent resilience: shadow model', () => {
  it('runs a shadow model beside the live one without changing live verdicts, and reports agreement', async () => {
    const frames = 240;
    const fps = 24;
    const seed = 21;
    const minShadowScored = 20;
    const [v1, v2] = await Promise.all([
      rig.assignmentOf('1.0.0', models.v1),
      rig.assignmentOf('2.0.0', models.v2),
    ]);
    // Two agents on the same camera seed, side by side: one without a shadow, one with. The
    // camera's frame n is the same image on both, whenever each started: the runs are compared
    // on one range of frame numbers, from the first both will score after both are ready.
    const runs: [string, ModelAssignment | null][] = [
      ['shadow-off', null],
      ['shadow-on', v2],
    ];
    const agents = await Promise.all(
      runs.map(async ([id, shadow]) => {
        await rig.provision(id);
        const agent = await rig.startAgent(id, { seed, fps });
        await rig.setDesired(id, { model: v1, shadow });
        await rig.waitForFramesOn(id, '1.0.0', 1);
        if (shadow !== null)
          await eventually(
            () => (rig.reported(id)?.shadowModel?.version === '2.0.0' ? true : undefined),
            { what: 'shadow loaded' },
          );
        return agent;
      }),
    );
    const fromSeq = Math.max(...runs.map(([id]) => rig.results(id).at(-1)?.seq ?? 0)) + 1;
    const scoredFrom = (id: string) =>
      rig.results(id).filter((r) => r.seq >= fromSeq && r.model !== null).length;
    // The shadow gives way to the live model when the machine is busy (frames it skips): the
    // run also lasts until it has scored enough frames for its agreement to mean something.
    const shadowScored = () => rig.observer.telemetry.get('shadow-on')?.shadow?.scored ?? 0;
    await eventually(
      () =>
        runs.every(([id]) => scoredFrom(id) >= frames) && shadowScored() >= minShadowScored
          ? true
          : undefined,
      {
        what: `${frames} scored frames from frame ${fromSeq} on both agents and ${minShadowScored} scored by the shadow`,
        timeoutMs: 120_000,
        intervalMs: 100,
      },
    );
    await Promise.all(agents.map((agent) => rig.stopCleanly(agent)));
    const [offAll, onAll] = runs.map(([id]) => rig.results(id).filter((r) => r.seq >= fromSeq)) as [
      FrameResult[],
      FrameResult[],
    ];
    // A frame the agent dropped because more were waiting than its queue holds is answered
    // `unknown` (no model, reason `overload: ...`) in frame order: on a busy runner either agent
    // may drop some, with or without a shadow. Every other frame is scored by the live model.
    const dropped = (rs: FrameResult[]) => rs.filter((r) => r.model === null);
    for (const r of [...dropped(offAll), ...dropped(onAll)])
      expect([r.seq, r.verdict, r.reason]).toEqual([
        r.seq,
        'unknown',
        expect.stringMatching(/^overload: /),
      ]);
    const off = offAll.filter((r) => r.model !== null);
    const on = onAll.filter((r) => r.model !== null);

    // Same camera, same live model: the verdict and score of every frame both runs scored agree.
    const bySeq = new Map(off.map((r) => [r.seq, r]));
    const both = on.filter((r) => bySeq.has(r.seq));
    expect(both.length).toBeGreaterThan(frames / 4);
    for (const r of both) {
      const o = bySeq.get(r.seq)!;
      expect([r.seq, r.verdict, r.score, r.model?.version]).toEqual([
        o.seq,
        o.verdict,
        o.score,
        '1.0.0',
      ]);
    }
    expect(on.length).toBeGreaterThanOrEqual(frames);
    expect(on.every((r) => r.model?.version === '1.0.0' && r.verdict !== 'unknown')).toBe(true);

    const history = (id: string) => rig.observer.telemetryHistory.get(id) ?? [];
    const shadow = [...history('shadow-on')].reverse().find((t) => t.shadow !== undefined)?.shadow;
    expect(shadow?.model.version).toBe('2.0.0');
    expect(shadow?.scored).toBeGreaterThanOrEqual(minShadowScored);
    // Two trained versions of the same detector: they agree on most verdicts (0.94 measured),
    // and their scores differ (a shadow that reported the live scores would agree on all).
    expect(shadow?.agreementRate).toBeGreaterThan(0.5);
    expect(shadow?.agreementRate).toBeLessThanOrEqual(1);
    expect(shadow?.meanAbsScoreDiff).toBeGreaterThan(0);
    // The run without a shadow sent telemetry, none of it about a shadow.
    expect(history('shadow-off').length).toBeGreaterThan(0);
    expect(history('shadow-off').some((t) => t.shadow !== undefined)).toBe(false);

    const p50Off = median(off.map((r) => r.latencyMs.total));
    const p50On = median(on.map((r) => r.latencyMs.total));
    console.log(
      `[shadow] live latencyMs.total p50 without shadow ${p50Off.toFixed(2)} ms, with shadow ${p50On.toFixed(2)} ms ` +
        `(ratio ${(p50On / p50Off).toFixed(3)}, both agents at once); shadow scored ${shadow?.scored}, skipped ${shadow?.skipped}, ` +
        `agreement ${shadow?.agreementRate}, mean |score diff| ${shadow?.meanAbsScoreDiff?.toFixed(3)}; frames in both runs ${both.length}; ` +
        `dropped for overload ${dropped(offAll).length} without the shadow, ${dropped(onAll).length} with it`,
    );
    // What the shadow costs the live path is a benchmark's number (`bench agent`), not a test's:
    // here, every live verdict and score is identical with and without it (above).
  });
});
