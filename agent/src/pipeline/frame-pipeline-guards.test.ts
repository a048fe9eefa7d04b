import sharp from 'sharp';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelSlot, type AnomalyMap, type ScoringModel } from '@linesight/vision';
import { LinesightError, type FrameResult, type Manifest } from '@linesight/protocol';
import { testManifest } from '../test-manifest.ts';
import { FramePipeline, type CircuitOpened, type ScoredExtras } from './frame-pipeline.ts';
import type { Frame } from '../camera/camera.ts';

// The guards of the frame path that mutation testing found unheld by frame-pipeline.test.ts:
// the verdict at the threshold, what a failure does to the counters, and that a throwing
// listener (publish, onScored, inspect, onOpen) never stalls the frames behind it.

const manifest = (version: string): Manifest =>
  testManifest(version, version.replace(/\./g, '').padEnd(64, '0'));

const MAP: AnomalyMap = { width: 1, height: 1, data: new Float32Array([0.25]) };

/** A stand-in model returning `score` (and a map when asked); `fail` throws that kind of error. */
function fixedModel(
  score: number,
  opts: { fail?: 'error' | 'watchdog'; map?: boolean; closed?: { count: number } } = {},
): ScoringModel {
  return {
    run: async () => {
      if (opts.fail === 'error') throw new Error('inference exploded');
      if (opts.fail === 'watchdog')
        throw new LinesightError('ERR_MODEL_WATCHDOG', 'too slow', { details: { watchdogMs: 7 } });
      return opts.map === true ? { score, map: MAP } : { score };
    },
    close: async () => {
      if (opts.closed) opts.closed.count++;
    },
  } as unknown as ScoringModel;
}

let png: Buffer;
beforeAll(async () => {
  png = await sharp({
    create: { width: 8, height: 8, channels: 3, background: { r: 9, g: 9, b: 9 } },
  })
    .png()
    .toBuffer();
});

interface Scored {
  frame: Frame;
  result: FrameResult;
  extras: ScoredExtras;
}

function setup(
  options: {
    publish?: (r: FrameResult) => void;
    onScored?: (s: Scored) => void;
    inspect?: () => unknown;
    keepInput?: () => boolean;
    tripsToOpen?: number;
    onOpen?: (o: CircuitOpened) => void;
  } = {},
) {
  const slot = new ModelSlot<ScoringModel, Manifest>();
  const published: FrameResult[] = [];
  const scored: Scored[] = [];
  const cameraErrors: unknown[] = [];
  const pipeline = new FramePipeline({
    deviceId: 'd1',
    slot,
    queueDepth: 8,
    publish: (r) => {
      options.publish?.(r);
      published.push(r);
    },
    onScored: (frame, result, extras) => {
      scored.push({ frame, result, extras });
      options.onScored?.({ frame, result, extras });
    },
    ...(options.inspect === undefined ? {} : { inspect: options.inspect }),
    ...(options.keepInput === undefined ? {} : { keepInput: options.keepInput }),
    ...(options.tripsToOpen === undefined
      ? {}
      : {
          circuitBreaker: {
            tripsToOpen: options.tripsToOpen,
            onOpen: options.onOpen ?? (() => undefined),
          },
        }),
    onCameraError: (err) => cameraErrors.push(err),
    logger: pino({ level: 'silent' }),
  });
  let seq = 0;
  const push = (image: Buffer = png) =>
    pipeline.frame({ seq: seq++, capturedAt: new Date(Date.now() - 3), image });
  return { slot, pipeline, published, scored, cameraErrors, push };
}

describe('FramePipeline guards', () => {
  it('calls a score equal to the threshold a defect and one just below it good', async () => {
    const { slot, pipeline, published, push } = setup();
    await slot.swap(fixedModel(0.5), manifest('1.0.0'));
    push();
    await pipeline.drain();
    await slot.swap(fixedModel(0.4999), manifest('1.0.1'));
    push();
    await pipeline.drain();
    expect(published.map((r) => [r.verdict, r.score, r.threshold])).toEqual([
      ['defect', 0.5, 0.5],
      ['good', 0.4999, 0.5],
    ]);
    expect(pipeline.counters).toMatchObject({ captured: 2, scored: 2, defects: 1, unknown: 0 });
    expect(pipeline.framesByVersion).toEqual({ '1.0.0': 1, '1.0.1': 1 });
  });

  it('gives a reason on unknown results only, and the model and threshold on every scored one', async () => {
    const { slot, pipeline, published, push } = setup();
    push();
    await pipeline.drain();
    await slot.swap(fixedModel(0.1), manifest('1.0.0'));
    push();
    await pipeline.drain();
    expect(published[0]).toMatchObject({ verdict: 'unknown', threshold: null, model: null });
    expect(published[0]?.reason).toBe('no model loaded');
    expect(published[1]).toMatchObject({
      schema: 'linesight.result/v1',
      deviceId: 'd1',
      seq: 1,
      verdict: 'good',
      threshold: 0.5,
      model: { name: 'm', version: '1.0.0', sha256: manifest('1.0.0').sha256 },
    });
    expect(published[1]).not.toHaveProperty('reason');
    // Only the scored frame enters the end-to-end and model windows; capture and queue take every frame.
    expect(pipeline.latency.size).toBe(1);
    expect(pipeline.stages.inference.size).toBe(1);
    expect(pipeline.stages.preprocess.size).toBe(1);
    expect(published[1]?.latencyMs.total).toBeGreaterThan(0);
    expect(published[1]?.latencyMs.capture).toBeGreaterThanOrEqual(0);
  });

  it('counts a failed run as an error but a frame without a model as unknown only', async () => {
    const { slot, pipeline, published, push } = setup();
    push();
    await pipeline.drain();
    expect(pipeline.errors).toBe(0);
    expect(pipeline.counters).toMatchObject({ unknown: 1, scored: 0 });
    await slot.swap(fixedModel(0.9, { fail: 'error' }), manifest('1.0.0'));
    push();
    await pipeline.drain();
    expect(pipeline.errors).toBe(1);
    expect(pipeline.watchdogTrips).toBe(0);
    expect(pipeline.counters).toMatchObject({ unknown: 2, scored: 0, defects: 0 });
    expect(published[1]).toMatchObject({ verdict: 'unknown', score: null });
    // A failed run is no verdict: it enters no latency window of the live model.
    expect(pipeline.latency.size).toBe(0);
    expect(pipeline.stages.inference.size).toBe(0);
  });

  it('starts the latency windows afresh when another version goes live', async () => {
    const { slot, pipeline, push } = setup();
    await slot.swap(fixedModel(0.1), manifest('1.0.0'));
    push();
    push();
    await pipeline.drain();
    expect(pipeline.latency.size).toBe(2);
    expect(pipeline.stages.queue.size).toBe(2);
    await slot.swap(fixedModel(0.1), manifest('1.1.0'));
    push();
    await pipeline.drain();
    expect(pipeline.latency.size).toBe(1);
    for (const stage of ['capture', 'queue', 'preprocess', 'inference', 'publish'] as const)
      expect(pipeline.stages[stage].size, stage).toBe(1);
  });

  it('keeps going when publish throws, counting each failure as an error', async () => {
    let calls = 0;
    const { slot, pipeline, scored, push } = setup({
      publish: () => {
        calls++;
        if (calls === 1) throw new Error('broker gone');
      },
    });
    await slot.swap(fixedModel(0.9), manifest('1.0.0'));
    push();
    push();
    await pipeline.drain();
    expect(calls).toBe(2);
    expect(pipeline.errors).toBe(1);
    // The listener still hears of the frame whose publish failed.
    expect(scored.map((s) => s.result.seq)).toEqual([0, 1]);
    expect(pipeline.inFlight).toBe(0);
  });

  it('keeps going when the scored-frame listener or inspect throws', async () => {
    const { slot, pipeline, published, push } = setup({
      onScored: () => {
        throw new Error('listener broke');
      },
      inspect: () => {
        throw new Error('inspect broke');
      },
    });
    await slot.swap(fixedModel(0.9), manifest('1.0.0'));
    push();
    push();
    await pipeline.drain();
    expect(published.map((r) => r.verdict)).toEqual(['defect', 'defect']);
    expect(pipeline.errors).toBe(0);
  });

  it('hands the map, the inspection and the kept input to the listener only with a score', async () => {
    let keep = true;
    const { slot, pipeline, scored, push } = setup({
      inspect: () => 'stats',
      keepInput: () => keep,
    });
    await slot.swap(fixedModel(0.2, { map: true }), manifest('1.0.0'));
    push();
    await pipeline.drain();
    keep = false;
    push();
    await pipeline.drain();
    await slot.swap(fixedModel(0.2, { map: true, fail: 'error' }), manifest('1.0.1'));
    keep = true;
    push();
    await pipeline.drain();
    const [first, second, failed] = scored.map((s) => s.extras);
    expect(first?.map).toBe(MAP);
    expect(first?.inspected).toBe('stats');
    expect(first?.input?.spec).toEqual(manifest('1.0.0').inputSpec);
    expect(first?.input?.tensor).toBeInstanceOf(Float32Array);
    expect(first?.input?.tensor.length).toBe(64);
    expect(second).toEqual({ map: MAP, inspected: 'stats' });
    // A failed run has no score: no map and no input, though the tensor was inspected.
    expect(failed).toEqual({ inspected: 'stats' });
  });

  it('leaves out the inspection when inspect is not set or the frame did not decode', async () => {
    const { slot, pipeline, scored, push } = setup({ inspect: () => 'stats' });
    await slot.swap(fixedModel(0.2), manifest('1.0.0'));
    push(Buffer.from('not an image'));
    await pipeline.drain();
    expect(scored[0]?.result.verdict).toBe('unknown');
    expect(scored[0]?.extras).toEqual({});
  });

  it('releases each frame lease, so a swap closes the old model once its frames are done', async () => {
    const closed = { count: 0 };
    const { slot, pipeline, push } = setup();
    await slot.swap(fixedModel(0.1, { closed }), manifest('1.0.0'));
    push();
    push(Buffer.from('not an image'));
    await pipeline.drain();
    // Had a frame kept its lease, the swap would wait for it forever.
    await slot.swap(fixedModel(0.1), manifest('1.1.0'));
    expect(closed.count).toBe(1);
  });

  it('keeps the circuit open when its listener throws', async () => {
    const { slot, pipeline, published, push } = setup({
      tripsToOpen: 1,
      onOpen: () => {
        throw new Error('listener broke');
      },
    });
    await slot.swap(fixedModel(0.9, { fail: 'watchdog' }), manifest('3.0.0'));
    push();
    push();
    await pipeline.drain();
    expect(published.map((r) => r.reason)).toEqual([
      'ERR_MODEL_WATCHDOG: too slow',
      'circuit-open: m@3.0.0 is no longer run (watchdog: 1 consecutive runs over 7 ms)',
    ]);
    expect(pipeline.circuitOpenFrames).toBe(1);
  });

  it('does not open the circuit on runs that failed without a watchdog trip', async () => {
    const opened: CircuitOpened[] = [];
    const { slot, pipeline, published, push } = setup({
      tripsToOpen: 1,
      onOpen: (o) => opened.push(o),
    });
    await slot.swap(fixedModel(0.9, { fail: 'error' }), manifest('3.0.0'));
    push();
    push();
    await pipeline.drain();
    expect(opened).toEqual([]);
    expect(published.map((r) => r.reason)).toEqual(['inference exploded', 'inference exploded']);
  });

  it('counts camera errors and passes them on', () => {
    const { pipeline, cameraErrors } = setup();
    const err = new Error('no signal');
    pipeline.error(err);
    expect(pipeline.errors).toBe(1);
    expect(cameraErrors).toEqual([err]);
  });

  it('drains at once when idle and only after the last frame otherwise', async () => {
    const { slot, pipeline, published, push } = setup();
    await pipeline.drain();
    await slot.swap(fixedModel(0.1), manifest('1.0.0'));
    push();
    push();
    push();
    expect(pipeline.inFlight).toBe(3);
    await pipeline.drain();
    expect(published.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(pipeline.inFlight).toBe(0);
  });
});
