import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ModelSlot, type OnnxModel } from '@linesight/vision';
import type { FrameResult, Manifest } from '@linesight/protocol';
import { FramePipeline } from './frame-pipeline.ts';

const manifest = (version: string): Manifest => ({
  schema: 'linesight.manifest/v1',
  name: 'm',
  version,
  sha256: version.replace(/\./g, '').padEnd(64, '0'),
  sizeBytes: 1,
  inputSpec: {
    inputName: 'image',
    width: 8,
    height: 8,
    channels: 1,
    layout: 'NCHW',
    resize: 'fill',
    scale: 1 / 255,
    mean: [0],
    std: [1],
  },
  outputs: { score: 'score' },
  threshold: 0.5,
  issuedAt: '2026-11-23T10:00:00.000Z',
  keyId: '0123456789abcdef',
});

/** A stand-in for OnnxModel: scores are the frame's first byte / 255, after an awaited delay. */
function fakeModel(opts: { fail?: boolean; gate?: Promise<void> } = {}): OnnxModel {
  return {
    scoreImage: async (image: Buffer) => {
      await (opts.gate ?? Promise.resolve());
      if (opts.fail) throw new Error('inference exploded');
      return { score: (image[0] ?? 0) / 255, preprocessMs: 1, inferenceMs: 1 };
    },
    close: async () => undefined,
  } as unknown as OnnxModel;
}

function setup(queueDepth = 2) {
  const slot = new ModelSlot<OnnxModel, Manifest>();
  const published: FrameResult[] = [];
  const pipeline = new FramePipeline({
    deviceId: 'd1',
    slot,
    queueDepth,
    publish: (r) => published.push(r),
    onCameraError: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  let seq = 0;
  const push = (firstByte: number) =>
    pipeline.frame({ seq: seq++, capturedAt: new Date(), image: Buffer.from([firstByte]) });
  return { slot, pipeline, published, push };
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

  it('scores with the threshold of the live manifest and counts defects', async () => {
    const { slot, pipeline, published, push } = setup();
    await slot.swap(fakeModel(), manifest('1.0.0'));
    push(10);
    push(250);
    await pipeline.drain();
    expect(published.map((r) => r.verdict)).toEqual(['good', 'defect']);
    expect(published[1]?.model).toMatchObject({ name: 'm', version: '1.0.0' });
    expect(pipeline.counters).toMatchObject({ captured: 2, scored: 2, defects: 1 });
    expect(pipeline.framesByVersion).toEqual({ '1.0.0': 2 });
  });

  it('publishes an inference failure as unknown', async () => {
    const { slot, pipeline, published, push } = setup();
    await slot.swap(fakeModel({ fail: true }), manifest('1.0.0'));
    push(250);
    await pipeline.drain();
    expect(published[0]).toMatchObject({ verdict: 'unknown', score: null });
    expect(published[0]?.reason).toMatch(/inference exploded/);
  });

  it('drops the oldest waiting frame under overload and accounts for every frame', async () => {
    const { slot, pipeline, published, push } = setup(2);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    await slot.swap(fakeModel({ gate }), manifest('1.0.0'));
    for (let i = 0; i < 6; i++) push(i);
    // Frame 0 is in flight; 1-5 arrived meanwhile; only the newest two (4, 5) wait.
    open();
    await pipeline.drain();
    expect(published.map((r) => r.seq)).toEqual([0, 4, 5]);
    const c = pipeline.counters;
    expect(c.droppedOverload).toBe(3);
    expect(c.scored + c.unknown + c.droppedOverload).toBe(c.captured);
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
});
