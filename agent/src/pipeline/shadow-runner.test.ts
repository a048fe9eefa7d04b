import sharp from 'sharp';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelSlot, type ScoringModel } from '@linesight/vision';
import { greyInputSpec, type FrameResult, type Manifest } from '@linesight/protocol';
import type { Frame } from '../camera/camera.ts';
import { testManifest } from '@linesight/testkit/manifests';
import { FramePipeline } from './frame-pipeline.ts';
import { ShadowRunner } from './shadow-runner.ts';
import { eventually } from '@linesight/testkit/eventually';

const silent = pino({ level: 'silent' });
const manifest = (version: string): Manifest =>
  testManifest(version, version.replace(/\./g, '').padEnd(64, '0'));

/** A stand-in model scoring the first input value; `gate` holds its runs, `runs` counts them. */
function fakeModel(opts: { runs?: { count: number }; gate?: () => Promise<void> } = {}) {
  return {
    contract: { inputSpec: greyInputSpec(8), outputs: { score: 'score' }, threshold: 0.5 },
    run: async (input: Float32Array) => {
      if (opts.runs) opts.runs.count++;
      await opts.gate?.();
      return { score: input[0] ?? 0 };
    },
    close: async () => undefined,
  } as unknown as ScoringModel;
}

let image: Buffer;
beforeAll(async () => {
  image = await sharp({
    create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 200, b: 200 } },
  })
    .png()
    .toBuffer();
});

const frame = (seq: number): Frame => ({ seq, capturedAt: new Date(), image });

async function shadowSlot(runs?: { count: number }, gate?: () => Promise<void>) {
  const slot = new ModelSlot<ScoringModel, Manifest>();
  await slot.swap(
    fakeModel({ ...(runs ? { runs } : {}), ...(gate ? { gate } : {}) }),
    manifest('2.0.0'),
  );
  return slot;
}

describe('ShadowRunner', () => {
  it('scores a frame when the live pipeline is idle and compares verdicts', async () => {
    const runs = { count: 0 };
    const slot = await shadowSlot(runs);
    const shadow = new ShadowRunner(slot, silent, { liveBusy: () => false });
    shadow.offer(frame(1), { verdict: 'defect', score: 0.9 });
    await shadow.drain();
    expect(runs.count).toBe(1);
    expect(shadow.stats()).toMatchObject({ scored: 1, skipped: 0, errors: 0, agreementRate: 1 });
    expect(shadow.yielded).toBe(0);
    await slot.close();
  });

  it('yields to the live model: no start while a live frame waits, no inference if one arrived during preprocessing', async () => {
    const runs = { count: 0 };
    const slot = await shadowSlot(runs);
    // Busy at the start: the frame is not even preprocessed.
    let answers = [true];
    const liveBusy = () => answers.shift() ?? false;
    const shadow = new ShadowRunner(slot, silent, { liveBusy });
    shadow.offer(frame(1), { verdict: 'good', score: 0.1 });
    await shadow.drain();
    expect(runs.count).toBe(0);
    expect(shadow.stats()).toMatchObject({ scored: 0, skipped: 1 });
    expect(shadow.yielded).toBe(1);

    // Idle at the start, busy once preprocessing is done: dropped before inference.
    answers = [false, true];
    shadow.offer(frame(2), { verdict: 'good', score: 0.1 });
    await shadow.drain();
    expect(runs.count).toBe(0);
    expect(shadow.stats()).toMatchObject({ scored: 0, skipped: 2 });
    expect(shadow.yielded).toBe(2);

    // Idle throughout: scored.
    answers = [false, false];
    shadow.offer(frame(3), { verdict: 'good', score: 0.1 });
    await shadow.drain();
    expect(runs.count).toBe(1);
    expect(shadow.stats()).toMatchObject({ scored: 1, skipped: 2 });
    await slot.close();
  });

  it('skips frames offered while it is busy itself, and releases its lease', async () => {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => (open = r));
    const runs = { count: 0 };
    const slot = await shadowSlot(runs, () => gate);
    const shadow = new ShadowRunner(slot, silent);
    shadow.offer(frame(1), { verdict: 'good', score: 0.1 });
    shadow.offer(frame(2), { verdict: 'good', score: 0.1 });
    shadow.offer(frame(3), { verdict: 'good', score: 0.1 });
    expect(shadow.stats()).toMatchObject({ scored: 0, skipped: 2 });
    expect(shadow.yielded).toBe(0);
    // Wait until the first frame reached its inference, then let it finish.
    await eventually(() => runs.count > 0, { what: 'a shadow run', intervalMs: 1 });
    open();
    await shadow.drain();
    expect(shadow.stats()).toMatchObject({ scored: 1, skipped: 2 });
    // The lease was released: the slot closes without waiting on it.
    await slot.close();
  });

  it('starts a frame only if its run time fits before the next live frame, and samples one in N regardless', async () => {
    let now = 0;
    let costMs = 30;
    const runs = { count: 0 };
    // The stand-in model takes costMs of the fake clock.
    const slot = await shadowSlot(runs, async () => {
      now += costMs;
    });
    const shadow = new ShadowRunner(slot, silent, { now: () => now, sampleEvery: 4 });
    const live = { verdict: 'good' as const, score: 0.1, latencyMs: { total: 10 } };
    const offerAt = async (t: number) => {
      now = t;
      shadow.offer(frame(t), live);
      await shadow.drain();
    };
    // Frames every 33 ms, live takes 10: a 23 ms gap. Without history the shadow runs (and learns 30 ms).
    await offerAt(0);
    await offerAt(33);
    expect(runs.count).toBe(2);
    // 30 ms does not fit in 23: offers 3, 4 and 5 yield; the 4th offer since the last start is sampled.
    for (const t of [66, 99, 132]) await offerAt(t);
    expect(runs.count).toBe(2);
    expect(shadow.yielded).toBe(3);
    await offerAt(165);
    expect(runs.count).toBe(3);
    expect(shadow.stats()).toMatchObject({ scored: 3, skipped: 3 });

    // A candidate that fits in the gap scores every frame.
    costMs = 5;
    const cheap = new ShadowRunner(slot, silent, { now: () => now, sampleEvery: 4 });
    const before = runs.count;
    for (let k = 1; k <= 10; k++) {
      now = 1000 + 33 * k;
      cheap.offer(frame(k), live);
      await cheap.drain();
    }
    expect(runs.count).toBe(before + 10);
    expect(cheap.yielded).toBe(0);
    await slot.close();
  });

  it('scores the live input tensor when the input specs match, and decodes the frame when they differ', async () => {
    const scores: number[] = [];
    const slot = new ModelSlot<ScoringModel, Manifest>();
    const model = fakeModel();
    const run = model.run.bind(model);
    model.run = async (input) => {
      const out = await run(input);
      scores.push(out.score);
      return out;
    };
    await slot.swap(model, manifest('2.0.0'));
    const shadow = new ShadowRunner(slot, silent);
    const live = { verdict: 'good' as const, score: 0.1 };
    // The frame decodes to 200/255; the tensor handed over says 0.25: the shadow scored the tensor.
    shadow.offer(frame(1), live, {
      tensor: new Float32Array(64).fill(0.25),
      spec: greyInputSpec(8),
    });
    await shadow.drain();
    shadow.offer(frame(2), live, {
      tensor: new Float32Array(256).fill(0.25),
      spec: greyInputSpec(16),
    });
    await shadow.drain();
    expect(scores).toEqual([0.25, Math.fround(200 / 255)]);
    expect(shadow.reusedInputs).toBe(1);
    await slot.close();
  });

  it('with a real frame pipeline, gives way while live frames queue and scores when the line is idle', async () => {
    const liveSlot = new ModelSlot<ScoringModel, Manifest>();
    await liveSlot.swap(fakeModel(), manifest('1.0.0'));
    const shadowRuns = { count: 0 };
    const slot = await shadowSlot(shadowRuns);
    const published: FrameResult[] = [];
    // eslint-disable-next-line prefer-const -- the pipeline and the runner refer to each other
    let pipeline: FramePipeline;
    // sampleEvery 1: no forecast here, only the live-busy signal (the forecast is tested above).
    const shadow = new ShadowRunner(slot, silent, {
      liveBusy: () => pipeline.inFlight > 0,
      sampleEvery: 1,
    });
    pipeline = new FramePipeline({
      deviceId: 'd1',
      slot: liveSlot,
      queueDepth: 8,
      publish: (r) => published.push(r),
      keepInput: () => shadow.wantsInput(),
      onScored: (f, r, extras) => shadow.offer(f, r, extras.input),
      onCameraError: () => undefined,
      logger: silent,
    });
    // A burst: while later frames wait, the shadow must not start on the earlier ones.
    for (let i = 0; i < 5; i++) pipeline.frame(frame(i));
    await pipeline.drain();
    await shadow.drain();
    expect(published).toHaveLength(5);
    const afterBurst = shadow.stats();
    // Only the last frame of the burst found the line idle (and maybe not even that one).
    expect(afterBurst?.scored).toBeLessThanOrEqual(1);
    expect((afterBurst?.scored ?? 0) + (afterBurst?.skipped ?? 0)).toBe(5);
    // One frame at a time, the line idle in between: every frame is scored by the shadow.
    for (let i = 5; i < 8; i++) {
      pipeline.frame(frame(i));
      await pipeline.drain();
      await shadow.drain();
    }
    expect(shadow.stats()?.scored).toBe((afterBurst?.scored ?? 0) + 3);
    // Same input spec as the live model: the shadow never decoded a frame itself.
    expect(shadow.reusedInputs).toBe(shadow.stats()?.scored);
    expect(published.every((r) => r.model?.version === '1.0.0' && r.verdict !== 'unknown')).toBe(
      true,
    );
    await slot.close();
    await liveSlot.close();
  });
});
