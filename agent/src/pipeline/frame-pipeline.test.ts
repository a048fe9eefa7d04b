import sharp from 'sharp';
import pino from 'pino';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ModelSlot, type ScoringModel } from '@linesight/vision';
import { LinesightError, type FrameResult, type Manifest } from '@linesight/protocol';
import { testManifest } from '@linesight/testkit/manifests';
import { FramePipeline, type CircuitOpened } from './frame-pipeline.ts';
import { eventually } from '@linesight/testkit/eventually';

const manifest = (version: string): Manifest =>
  testManifest(version, version.replace(/\./g, '').padEnd(64, '0'));

/**
 * A stand-in model: the score is the first input value (the frame's grey level / 255), after an
 * awaited gate. `fail` may decide per run (0-based run count); `runs` counts the runs started.
 */
function fakeModel(
  opts: {
    fail?: 'error' | 'watchdog' | ((run: number) => 'error' | 'watchdog' | undefined);
    gate?: Promise<void>;
    runs?: { count: number };
  } = {},
): ScoringModel {
  let runs = 0;
  return {
    run: async (input: Float32Array) => {
      const fail = typeof opts.fail === 'function' ? opts.fail(runs) : opts.fail;
      runs++;
      if (opts.runs) opts.runs.count++;
      await (opts.gate ?? Promise.resolve());
      if (fail === 'error') throw new Error('inference exploded');
      if (fail === 'watchdog')
        throw new LinesightError('ERR_MODEL_WATCHDOG', 'too slow', { details: { watchdogMs: 5 } });
      return { score: input[0] ?? 0 };
    },
    close: async () => undefined,
  } as unknown as ScoringModel;
}

const images = new Map<number, Buffer>();
beforeAll(async () => {
  for (const v of [0, 1, 2, 3, 4, 5, 10, 250]) {
    images.set(
      v,
      await sharp({
        create: { width: 8, height: 8, channels: 3, background: { r: v, g: v, b: v } },
      })
        .png()
        .toBuffer(),
    );
  }
});

function setup(queueDepth = 2, tripsToOpen?: number) {
  const slot = new ModelSlot<ScoringModel, Manifest>();
  const published: FrameResult[] = [];
  const dropped: FrameResult[] = [];
  const opened: CircuitOpened[] = [];
  const pipeline = new FramePipeline({
    deviceId: 'd1',
    slot,
    queueDepth,
    publish: (r) => published.push(r),
    onDropped: (r) => dropped.push(r),
    onCameraError: () => undefined,
    ...(tripsToOpen === undefined
      ? {}
      : { circuitBreaker: { tripsToOpen, onOpen: (o: CircuitOpened) => opened.push(o) } }),
    logger: pino({ level: 'silent' }),
  });
  let seq = 0;
  const push = (grey: number) =>
    pipeline.frame({ seq: seq++, capturedAt: new Date(), image: images.get(grey)! });
  return { slot, pipeline, published, dropped, opened, push };
}

describe('FramePipeline', () => {
  it('publishes unknown, never good, while no model is loaded', async () => {
    const { pipeline, published, push } = setup();
    push(10);
    await pipeline.drain();
    expect(published[0]).toMatchObject({
      verdict: 'unknown',
      reason: 'no model loaded',
      score: null,
    });
    expect(pipeline.counters).toMatchObject({ captured: 1, unknown: 1, scored: 0 });
  });

  it('scores with the threshold of the live manifest, counts defects and times each stage', async () => {
    const { slot, pipeline, published, push } = setup();
    await slot.swap(fakeModel(), manifest('1.0.0'));
    push(10);
    push(250);
    await pipeline.drain();
    expect(published.map((r) => r.verdict)).toEqual(['good', 'defect']);
    expect(published[1]?.score).toBeCloseTo(250 / 255, 6);
    expect(published[1]?.model).toMatchObject({ name: 'm', version: '1.0.0' });
    expect(published[1]?.latencyMs.preprocess).toBeGreaterThan(0);
    expect(pipeline.counters).toMatchObject({ captured: 2, scored: 2, defects: 1 });
    expect(pipeline.framesByVersion).toEqual({ '1.0.0': 2 });
  });

  it('publishes an inference failure and a watchdog trip as unknown', async () => {
    const { slot, pipeline, published, push } = setup();
    await slot.swap(fakeModel({ fail: 'error' }), manifest('1.0.0'));
    push(250);
    await pipeline.drain();
    await slot.swap(fakeModel({ fail: 'watchdog' }), manifest('1.0.1'));
    push(250);
    await pipeline.drain();
    expect(published.map((r) => r.verdict)).toEqual(['unknown', 'unknown']);
    expect(published[0]?.reason).toMatch(/inference exploded/);
    expect(pipeline.watchdogTrips).toBe(1);
  });

  it('publishes a corrupt frame as unknown and goes on', async () => {
    const { slot, pipeline, published } = setup();
    await slot.swap(fakeModel(), manifest('1.0.0'));
    pipeline.frame({ seq: 0, capturedAt: new Date(), image: Buffer.from('not an image') });
    pipeline.frame({ seq: 1, capturedAt: new Date(), image: images.get(10)! });
    await pipeline.drain();
    expect(published.map((r) => r.verdict)).toEqual(['unknown', 'good']);
    expect(published[0]?.reason).toMatch(/ERR_IMAGE_DECODE/);
  });

  it('drops the oldest waiting frame under overload, publishes it as unknown in frame order, and accounts for every frame', async () => {
    const { slot, pipeline, published, dropped, push } = setup(2);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    await slot.swap(fakeModel({ gate }), manifest('1.0.0'));
    for (let i = 0; i < 6; i++) push(i);
    // Frame 0 is being preprocessed; 1-5 arrived meanwhile; only the newest two (4, 5) wait to be
    // scored, and 1-3 are published as unknown right after 0, before 4 and 5.
    expect(published).toEqual([]);
    open();
    await pipeline.drain();
    expect(published.map((r) => [r.seq, r.verdict])).toEqual([
      [0, 'good'],
      [1, 'unknown'],
      [2, 'unknown'],
      [3, 'unknown'],
      [4, 'good'],
      [5, 'good'],
    ]);
    for (const r of published.slice(1, 4)) {
      expect(r).toMatchObject({ model: null, score: null, threshold: null });
      expect(r.reason).toBe('overload: dropped unscored, more than 2 frames were waiting');
    }
    expect(dropped.map((r) => r.seq)).toEqual([1, 2, 3]);
    const c = pipeline.counters;
    expect(c).toMatchObject({ captured: 6, scored: 3, unknown: 0, droppedOverload: 3 });
    expect(c.scored + c.unknown + c.droppedOverload).toBe(c.captured);
  });

  it('keeps frame order when frames are dropped behind frames in inference and ready', async () => {
    const { slot, pipeline, published, push } = setup(1);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const runs = { count: 0 };
    await slot.swap(fakeModel({ gate, runs }), manifest('1.0.0'));
    push(0);
    await eventually(() => expect(runs.count).toBe(1));
    // 0 is in inference, held by the gate; 1 is preprocessed meanwhile; 2-5 overflow the queue
    // of one, and every dropped frame must wait for the frames ahead of it.
    for (let i = 1; i <= 5; i++) push(i);
    expect(published).toEqual([]);
    open();
    await pipeline.drain();
    expect(published.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4, 5]);
    const c = pipeline.counters;
    expect(c.droppedOverload).toBeGreaterThanOrEqual(3);
    expect(published.filter((r) => r.reason?.startsWith('overload:'))).toHaveLength(
      c.droppedOverload,
    );
    expect(c.scored + c.droppedOverload).toBe(6);
  });

  it('preprocesses the next frame while the current one is in inference', async () => {
    const { slot, pipeline, published, push } = setup(4);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const runs = { count: 0 };
    await slot.swap(fakeModel({ gate, runs }), manifest('1.0.0'));
    // Each preprocess takes a lease on the live model first: count them.
    const acquire = vi.spyOn(slot, 'acquire');
    push(1);
    push(2);
    push(3);
    // Frame 0 is held in inference; frame 1 must be preprocessed meanwhile (into the ready
    // slot), and frame 2 must wait for that slot. Without the overlap only frame 0 is leased.
    await eventually(() => acquire.mock.calls.length >= 2, {
      what: 'a second lease',
      timeoutMs: 5000,
      intervalMs: 5,
    });
    expect(runs.count).toBe(1);
    expect(acquire.mock.calls.length).toBe(2);
    expect(published).toHaveLength(0);
    open();
    await pipeline.drain();
    expect(published.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(acquire.mock.calls.length).toBe(3);
  });

  it('finishes an in-flight frame on the old model across a swap', async () => {
    const { slot, pipeline, published, push } = setup();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    await slot.swap(fakeModel({ gate }), manifest('1.0.0'));
    push(1);
    const swapped = slot.swap(fakeModel(), manifest('1.1.0'));
    push(2);
    open();
    await pipeline.drain();
    await swapped;
    expect(published.map((r) => `${r.seq}:${r.model?.version}`)).toEqual(['0:1.0.0', '1:1.1.0']);
  });

  it('opens the circuit after N consecutive watchdog trips: no more runs, unknown with circuit-open, told once', async () => {
    const { slot, pipeline, published, opened, push } = setup(8, 3);
    const runs = { count: 0 };
    await slot.swap(fakeModel({ fail: 'watchdog', runs }), manifest('2.0.0'));
    for (let i = 0; i < 5; i++) push(10);
    await pipeline.drain();
    expect(runs.count).toBe(3);
    expect(published.map((r) => r.verdict)).toEqual(Array(5).fill('unknown'));
    expect(published.slice(0, 3).map((r) => r.reason)).toEqual(
      Array(3).fill('ERR_MODEL_WATCHDOG: too slow'),
    );
    for (const r of published.slice(3)) {
      expect(r.reason).toBe(
        'circuit-open: m@2.0.0 is no longer run (watchdog: 3 consecutive runs over 5 ms)',
      );
      expect(r.model?.version).toBe('2.0.0');
      expect(r.score).toBeNull();
      expect(r.latencyMs.inference).toBe(0);
    }
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ trips: 3, watchdogMs: 5 });
    expect(opened[0]?.manifest.version).toBe('2.0.0');
    // Trips keep their meaning (runs abandoned); circuit-open frames are counted apart, not as errors.
    expect(pipeline.watchdogTrips).toBe(3);
    expect(pipeline.circuitOpenFrames).toBe(2);
    expect(pipeline.errors).toBe(3);
    expect(pipeline.counters).toMatchObject({ captured: 5, unknown: 5, scored: 0 });

    // Nothing live after it: frames still say why, without a model.
    await slot.clear();
    push(10);
    await pipeline.drain();
    expect(published.at(-1)).toMatchObject({ verdict: 'unknown', model: null, score: null });
    expect(published.at(-1)?.reason).toMatch(/^circuit-open: m@2\.0\.0/);
    expect(pipeline.circuitOpenFrames).toBe(3);

    // Another version goes live: scored normally; once it is gone, "no model" again.
    await slot.swap(fakeModel(), manifest('1.0.0'));
    push(10);
    await pipeline.drain();
    expect(published.at(-1)).toMatchObject({ verdict: 'good' });
    await slot.clear();
    push(10);
    await pipeline.drain();
    expect(published.at(-1)?.reason).toBe('no model loaded');
    expect(opened).toHaveLength(1);
  });

  it('keeps the circuit closed while successful runs break the streak', async () => {
    const { slot, pipeline, published, opened, push } = setup(8, 2);
    // watchdog, ok, watchdog, ok, ...: never two in a row.
    await slot.swap(
      fakeModel({ fail: (run) => (run % 2 === 0 ? 'watchdog' : undefined) }),
      manifest('1.0.0'),
    );
    for (let i = 0; i < 6; i++) push(10);
    await pipeline.drain();
    expect(opened).toEqual([]);
    expect(published.map((r) => r.verdict)).toEqual([
      'unknown',
      'good',
      'unknown',
      'good',
      'unknown',
      'good',
    ]);
    expect(pipeline.watchdogTrips).toBe(3);
    expect(pipeline.circuitOpenFrames).toBe(0);
  });

  it('never opens without a circuit breaker option', async () => {
    const { slot, pipeline, published, push } = setup(8);
    const runs = { count: 0 };
    await slot.swap(fakeModel({ fail: 'watchdog', runs }), manifest('1.0.0'));
    for (let i = 0; i < 5; i++) push(10);
    await pipeline.drain();
    expect(runs.count).toBe(5);
    expect(published.map((r) => r.reason)).toEqual(Array(5).fill('ERR_MODEL_WATCHDOG: too slow'));
  });
});
