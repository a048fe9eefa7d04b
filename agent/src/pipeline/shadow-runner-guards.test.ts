// The shadow runner's guards and statistics, each held on its own: mutation testing
// (`npm run mutation`) found these behaviours unheld by shadow-runner.test.ts.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ModelSlot, type ScoringModel } from '@linesight/vision';
import { greyInputSpec, type Manifest } from '@linesight/protocol';
import { testManifest } from '@linesight/testkit/manifests';
import type { Frame } from '../camera/camera.ts';
import { ShadowRunner } from './shadow-runner.ts';

const silent = pino({ level: 'silent' });
const spec = greyInputSpec(8);
const manifest = (version: string): Manifest =>
  testManifest(version, version.replace(/\./g, '').padEnd(64, '0'));

/** A stand-in model (threshold 0.5) that scores the first input value, or fails with `fail`. */
function model(opts: { run?: () => Promise<void> | void; fail?: Error } = {}): ScoringModel {
  return {
    contract: { inputSpec: spec, outputs: { score: 'score' }, threshold: 0.5 },
    run: async (input: Float32Array) => {
      await opts.run?.();
      if (opts.fail) throw opts.fail;
      return { score: input[0] ?? 0 };
    },
    close: async () => undefined,
  } as unknown as ScoringModel;
}

async function slotWith(m: ScoringModel, version = '2.0.0') {
  const slot = new ModelSlot<ScoringModel, Manifest>();
  await slot.swap(m, manifest(version));
  return slot;
}

/** A frame whose image is not an image: decoding it fails. */
const frame = (seq: number): Frame => ({ seq, capturedAt: new Date(), image: Buffer.from('no') });
/** The live input tensor, of the shadow's own spec: the shadow scores `value` without decoding. */
const input = (value: number) => ({ tensor: new Float32Array(64).fill(value), spec });

describe('ShadowRunner guards', () => {
  it('agreement and mean score difference count every scored frame; a score at the threshold is a defect', async () => {
    const slot = await slotWith(model());
    const shadow = new ShadowRunner(slot, silent, { sampleEvery: 1 });
    // Shadow scores 0.5 (defect at the threshold), 0.2 (good), 0.9 (defect).
    const offers: [number, 'good' | 'defect', number][] = [
      [0.5, 'defect', 0.75],
      [0.2, 'defect', 0.7],
      [0.9, 'defect', 0.8],
    ];
    for (const [shadowScore, verdict, liveScore] of offers) {
      shadow.offer(frame(1), { verdict, score: liveScore }, input(shadowScore));
      await shadow.drain();
    }
    const stats = shadow.stats();
    expect(stats).toMatchObject({ scored: 3, skipped: 0, errors: 0 });
    expect(stats?.agreementRate).toBeCloseTo(2 / 3, 9);
    expect(stats?.meanAbsScoreDiff).toBeCloseTo((0.25 + 0.5 + 0.1) / 3, 6);
    await slot.close();
  });

  it('reports no rates before a frame is scored, and no statistics without a model', async () => {
    const empty = new ShadowRunner(new ModelSlot<ScoringModel, Manifest>(), silent);
    expect(empty.stats()).toBeUndefined();
    expect(empty.wantsInput()).toBe(false);
    const slot = await slotWith(model());
    const shadow = new ShadowRunner(slot, silent);
    expect(shadow.stats()).toMatchObject({
      scored: 0,
      agreementRate: null,
      meanAbsScoreDiff: null,
    });
    await slot.close();
  });

  it('ignores a frame the live model could not score', async () => {
    let runs = 0;
    const slot = await slotWith(model({ run: () => void runs++ }));
    const shadow = new ShadowRunner(slot, silent, { sampleEvery: 1 });
    shadow.offer(frame(1), { verdict: 'unknown', score: null }, input(0.9));
    await shadow.drain();
    expect(runs).toBe(0);
    expect(shadow.stats()).toMatchObject({ scored: 0, skipped: 0, errors: 0 });
    await slot.close();
  });

  it('wants the live input only while it has a model and is idle', async () => {
    let open = () => {};
    const gate = new Promise<void>((r) => (open = r));
    const slot = await slotWith(model({ run: () => gate }));
    const shadow = new ShadowRunner(slot, silent, { sampleEvery: 1 });
    expect(shadow.wantsInput()).toBe(true);
    shadow.offer(frame(1), { verdict: 'good', score: 0.1 }, input(0.1));
    expect(shadow.wantsInput()).toBe(false);
    open();
    await shadow.drain();
    expect(shadow.wantsInput()).toBe(true);
    await slot.close();
  });

  it('counts a frame it cannot decode and a run that fails as errors, and keeps scoring', async () => {
    let fail: Error | undefined = new Error('run failed');
    const slot = await slotWith(
      model({
        run: () => {
          if (fail) throw fail;
        },
      }),
    );
    const shadow = new ShadowRunner(slot, silent, { sampleEvery: 1 });
    shadow.offer(frame(1), { verdict: 'good', score: 0.1 }, input(0.1));
    await shadow.drain();
    // No input tensor: the frame's bytes must be decoded, and they are no image.
    shadow.offer(frame(2), { verdict: 'good', score: 0.1 });
    await shadow.drain();
    expect(shadow.stats()).toMatchObject({ scored: 0, errors: 2, skipped: 0 });
    fail = undefined;
    shadow.offer(frame(3), { verdict: 'good', score: 0.1 }, input(0.1));
    await shadow.drain();
    expect(shadow.stats()).toMatchObject({ scored: 1, errors: 2 });
    await slot.close();
  });

  it('does not count a yield when its model was removed before the frame was started', async () => {
    const slot = await slotWith(model());
    let start: (() => void) | undefined;
    const shadow = new ShadowRunner(slot, silent, {
      sampleEvery: 1,
      defer: (run) => (start = run),
    });
    shadow.offer(frame(1), { verdict: 'good', score: 0.1 }, input(0.1));
    await slot.clear();
    start?.();
    await shadow.drain();
    expect(shadow.yielded).toBe(0);
    expect(shadow.stats()).toBeUndefined();
  });

  it('starts over with a new model: its statistics and its run-time history', async () => {
    let now = 0;
    let cost = 30;
    const slot = await slotWith(model({ run: () => void (now += cost) }));
    const shadow = new ShadowRunner(slot, silent, { now: () => now, sampleEvery: 100 });
    const live = { verdict: 'good' as const, score: 0.1, latencyMs: { total: 10 } };
    const offerAt = async (t: number) => {
      now = t;
      shadow.offer(frame(t), live, input(0.1));
      await shadow.drain();
    };
    // Frames every 33 ms, live 10 ms: a 23 ms gap. The first two run (no history), then 30 ms does not fit.
    for (const t of [0, 33, 66, 99]) await offerAt(t);
    expect(shadow.stats()).toMatchObject({ scored: 2, skipped: 2 });
    // A new candidate: fresh statistics, and its run time is not judged by the old one's.
    await slot.swap(model({ run: () => void (now += cost) }), manifest('3.0.0'));
    cost = 5;
    for (const t of [132, 165, 198, 231]) await offerAt(t);
    expect(shadow.stats()).toMatchObject({
      model: { version: '3.0.0' },
      scored: 4,
      skipped: 0,
    });
    // Its latency too: the old candidate's 30 ms runs were reported as the new one's.
    expect(shadow.stats()?.latencyMs.max).toBe(5);
    await slot.close();
  });

  it('reports inference time alone, and a run that just fits the gap is started', async () => {
    let now = 0;
    const slot = await slotWith(model({ run: () => void (now += 20) }));
    const shadow = new ShadowRunner(slot, silent, { now: () => now, sampleEvery: 100 });
    // Every 30 ms, live 10 ms: a 20 ms gap, exactly the shadow's run time.
    for (let k = 0; k < 6; k++) {
      now = 1000 + 30 * k;
      shadow.offer(frame(k), { verdict: 'good', score: 0.1, latencyMs: { total: 10 } }, input(0.1));
      await shadow.drain();
    }
    expect(shadow.stats()).toMatchObject({ scored: 6, skipped: 0 });
    expect(shadow.stats()?.latencyMs).toMatchObject({ p50: 20, max: 20 });
    await slot.close();
  });

  it('forecasts without a live latency, on the real clock by default', async () => {
    // Each interval between offers holds the whole previous run, so every run fits.
    const slot = await slotWith(model());
    const shadow = new ShadowRunner(slot, silent, { sampleEvery: 100 });
    for (let k = 0; k < 6; k++) {
      shadow.offer(frame(k), { verdict: 'good', score: 0.1 }, input(0.1));
      await shadow.drain();
    }
    expect(shadow.stats()).toMatchObject({ scored: 6, skipped: 0 });
    await slot.close();
  });
});
