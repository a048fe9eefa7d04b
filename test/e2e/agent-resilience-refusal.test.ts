// Agent resilience (a `linesight agent` process): models that must not go live are refused
// on the device (NaN score, wrong input shape, unloadable, golden scores that are not the
// file's own) and the live version keeps scoring every frame. The rig signs as a broken
// publisher would (test/helpers/resilience-setup.ts).
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiError } from '@linesight/api-client';
import { eventually } from '@linesight/testkit/eventually';
import { withContractInputSize, withNanScore, withUnknownOp } from '../helpers/onnx-mutations.ts';
import { goldenScoresOf } from '@linesight/vision';
import { ResilienceRig } from '../helpers/resilience-setup.ts';

const models = inject('models');
let rig: ResilienceRig;

beforeAll(async () => {
  rig = await ResilienceRig.start('refusal');
});
afterEach(() => rig.afterEach());
afterAll(() => rig?.close());

describe('agent resilience: refusal', () => {
  it('refuses a NaN model, a wrong input shape, an unloadable model and wrong golden scores, and keeps the live version', async () => {
    const id = 'refuser';
    const v1 = await readFile(models.v1);
    const v2 = await readFile(models.v2);
    await rig.provision(id);
    const agent = await rig.startAgent(id, { seed: 11, fps: 10 });
    await rig.setDesired(id, { model: await rig.assignment('line', '1.0.0', v1) });
    await rig.waitForFramesOn(id, '1.0.0');

    const cases = [
      { version: '1.0.1-nan', bytes: withNanScore(v1), code: 'ERR_MODEL_OUTPUT' },
      {
        version: '1.0.1-shape',
        bytes: withContractInputSize(v1, { width: 96, height: 80 }),
        code: 'ERR_MODEL_CONTRACT',
      },
      { version: '1.0.1-unknown-op', bytes: withUnknownOp(v1), code: 'ERR_MODEL_LOAD' },
    ];
    // The cloud refuses each of these files at upload: only a broken signer could send them.
    for (const c of cases) {
      const answer = await rig.api
        .publishModel({ name: 'refused', version: c.version, onnx: c.bytes })
        .then(
          () => 'accepted',
          (err: unknown) => (err instanceof CloudApiError ? err.status : String(err)),
        );
      expect(answer, `cloud answer to ${c.version}`).toBe(400);
    }
    // A genuine file whose signed golden scores are not its own (caught only on the device).
    const wrongGolden = {
      version: '1.0.1-golden',
      bytes: v2,
      golden: (await goldenScoresOf(v1)) as number[] | null,
      code: 'ERR_MODEL_OUTPUT',
    };

    for (const c of [...cases.map((x) => ({ ...x, golden: null })), wrongGolden]) {
      const doc = await rig.setDesired(id, {
        model: await rig.assignment('line', c.version, c.bytes, { golden: c.golden }),
      });
      const state = await eventually(
        () => {
          const r = rig.reported(id);
          return r?.desiredRevision === doc.revision && r.lastError?.model?.version === c.version
            ? r
            : undefined;
        },
        { what: `${c.version} refused`, timeoutMs: 60_000, intervalMs: 50 },
      );
      expect(state.lastError?.code, `${c.version}: ${state.lastError?.message}`).toBe(c.code);
      expect(state.model?.version).toBe('1.0.0');
      expect(state.phase).toBe('running');
      // Frames keep flowing on the live version.
      await rig.waitForFramesOn(id, '1.0.0', 5);
    }
    const refusals = (rig.observer.events.get(id) ?? []).filter((e) => e.type === 'model.refused');
    expect(refusals.map((e) => [e.model?.version, e.code])).toEqual(
      [...cases, wrongGolden].map((c) => [c.version, c.code]),
    );

    await rig.stopCleanly(agent);
    // Once the model was live, every frame was scored by it: no unknown, no other version.
    const all = rig.results(id);
    const first = all.findIndex((r) => r.model !== null);
    expect(first).toBeGreaterThanOrEqual(0);
    const live = all.slice(first);
    // At least the 5 frames awaited after each of the four refusals.
    expect(live.length).toBeGreaterThanOrEqual(20);
    expect(live.filter((r) => r.verdict === 'unknown' || r.model?.version !== '1.0.0')).toEqual([]);
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i));
  });
});
