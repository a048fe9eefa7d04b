import sharp from 'sharp';
import pino from 'pino';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ModelSlot, type AnomalyMap, type ScoringModel } from '@linesight/vision';
import { LinesightError, type FrameResult, type Manifest } from '@linesight/protocol';
import { testManifest } from '@linesight/testkit/manifests';
import { FramePipeline, type CircuitOpened, type ScoredExtras } from './frame-pipeline.ts';
import type { Frame } from '../camera/camera.ts';
import { eventually } from '@linesight/testkit/eventually';

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

/** Log records the pipeline wrote, parsed. */
type LogLine = { level: number; msg: string } & Record<string, unknown>;

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
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );
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
    logger,
  });
  let seq = 0;
  const push = (image: Buffer = png) =>
    pipeline.frame({ seq: seq++, capturedAt: new Date(Date.now() - 3), image });
  const logged = (msg: string) => logs.filter((l) => l.msg === msg);
  return { slot, pipeline, published, scored, cameraErrors, push, logged };
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
    expect(second).toStrictEqual({ map: MAP, inspected: 'stats' });
    // A failed run has no score: no map and no input, though the tensor was inspected.
    expect(failed).toStrictEqual({ inspected: 'stats' });
  });

  it('leaves out the inspection when inspect is not set or the frame did not decode', async () => {
    const { slot, pipeline, scored, push } = setup({ inspect: () => 'stats' });
    await slot.swap(fixedModel(0.2), manifest('1.0.0'));
    push(Buffer.from('not an image'));
    await pipeline.drain();
    expect(scored[0]?.result.verdict).toBe('unknown');
    expect(scored[0]?.extras).toStrictEqual({});
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

  it('counts every defect verdict and no good one', async () => {
    const { slot, pipeline, push } = setup();
    await slot.swap(fixedModel(0.9), manifest('1.0.0'));
    push();
    push();
    await pipeline.drain();
    await slot.swap(fixedModel(0.1), manifest('1.0.1'));
    push();
    await pipeline.drain();
    expect(pipeline.counters).toMatchObject({ scored: 3, defects: 2 });
  });

  it('counts the frame in inference, the one preprocessed and those waiting as in flight', async () => {
    const { slot, pipeline, published, push } = setup();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let runs = 0;
    await slot.swap(
      {
        run: async () => {
          runs++;
          await gate;
          return { score: 0.1 };
        },
        close: async () => undefined,
      } as unknown as ScoringModel,
      manifest('1.0.0'),
    );
    const acquire = vi.spyOn(slot, 'acquire');
    push();
    push();
    push();
    // Frame 0 in inference, frame 1 preprocessed into the ready slot, frame 2 waiting.
    await eventually(() => runs === 1 && acquire.mock.calls.length === 2, {
      what: 'frame 1 preprocessed',
      intervalMs: 5,
    });
    await new Promise((r) => setImmediate(r));
    expect(pipeline.inFlight).toBe(3);
    open();
    await pipeline.drain();
    expect(published).toHaveLength(3);
    expect(pipeline.inFlight).toBe(0);
  });

  it('publishes a frame that did not decode as unknown even when its input is to be kept', async () => {
    const { slot, pipeline, published, scored, push } = setup({ keepInput: () => true });
    await slot.swap(fixedModel(0.2), manifest('1.0.0'));
    push(Buffer.from('not an image'));
    push();
    await pipeline.drain();
    expect(published.map((r) => r.verdict)).toEqual(['unknown', 'good']);
    expect(scored[0]?.extras).toStrictEqual({});
    expect(scored[1]?.extras.input?.tensor).toHaveLength(64);
  });

  it('hands no map key to the listener for a model without a map', async () => {
    const { slot, pipeline, scored, push } = setup({ inspect: () => 'stats' });
    await slot.swap(fixedModel(0.2), manifest('1.0.0'));
    push();
    await pipeline.drain();
    expect(scored[0]?.extras).toStrictEqual({ inspected: 'stats' });
  });

  it('opens the circuit on watchdog errors that carry no details', async () => {
    const opened: CircuitOpened[] = [];
    const { slot, pipeline, published, push } = setup({
      tripsToOpen: 1,
      onOpen: (o) => opened.push(o),
    });
    await slot.swap(
      {
        run: async () => {
          throw new LinesightError('ERR_MODEL_WATCHDOG', 'too slow');
        },
        close: async () => undefined,
      } as unknown as ScoringModel,
      manifest('4.0.0'),
    );
    push();
    push();
    await pipeline.drain();
    expect(published).toHaveLength(2);
    expect(opened).toHaveLength(1);
    expect(published[1]?.reason).toMatch(/^circuit-open: m@4\.0\.0/);
  });

  it('cuts a long failure reason to 500 characters', async () => {
    const { slot, pipeline, published, push } = setup();
    await slot.swap(
      {
        run: async () => {
          throw new Error('x'.repeat(2000));
        },
        close: async () => undefined,
      } as unknown as ScoringModel,
      manifest('1.0.0'),
    );
    push();
    await pipeline.drain();
    expect(published[0]?.reason).toBe('x'.repeat(500));
  });

  it('reports stage latencies within the time the frame spent, and the capture age', async () => {
    const { slot, pipeline, published } = setup();
    await slot.swap(fixedModel(0.2), manifest('1.0.0'));
    const capturedAt = new Date(Date.now() - 10_000);
    const before = performance.now();
    pipeline.frame({ seq: 0, capturedAt, image: png });
    await pipeline.drain();
    const spanMs = performance.now() - before;
    const ms = published[0]?.latencyMs;
    if (ms === undefined) throw new Error('no result');
    // Invariants of the bookkeeping, not speed: every figure is a part of the frame's own span.
    for (const stage of ['queue', 'preprocess', 'inference', 'total'] as const) {
      expect(ms[stage], stage).toBeGreaterThanOrEqual(0);
      expect(ms[stage], stage).toBeLessThanOrEqual(spanMs + 0.001);
    }
    expect(ms.queue + ms.preprocess + ms.inference).toBeLessThanOrEqual(ms.total + 0.003);
    // The camera captured it 10 s before it arrived: capture time + agent time = its age.
    expect(ms.capture + ms.total).toBeGreaterThanOrEqual(10_000 - 0.002);
    expect(ms.capture + ms.total).toBeLessThanOrEqual(10_000 + spanMs + 1);
    for (const stage of ['publish', 'inference', 'preprocess', 'queue'] as const) {
      const { max } = pipeline.stages[stage].summary();
      expect(max, stage).toBeGreaterThanOrEqual(0);
      expect(max, stage).toBeLessThanOrEqual(spanMs + 0.01);
    }
  });

  it('logs what went wrong with the frame it concerns', async () => {
    let calls = 0;
    const { slot, pipeline, push, logged } = setup({
      publish: () => {
        if (calls++ === 1) throw new Error('broker gone');
      },
      onScored: () => {
        throw new Error('listener broke');
      },
      inspect: () => {
        throw new Error('inspect broke');
      },
      tripsToOpen: 2,
      onOpen: () => {
        throw new Error('open listener broke');
      },
    });
    await slot.swap(fixedModel(0.9, { fail: 'error' }), manifest('1.0.0'));
    push();
    await pipeline.drain();
    await slot.swap(fixedModel(0.9), manifest('1.0.1'));
    push();
    await pipeline.drain();
    await slot.swap(fixedModel(0.9, { fail: 'watchdog' }), manifest('1.0.2'));
    push();
    push();
    await pipeline.drain();
    expect(logged('frame could not be scored')[0]).toMatchObject({
      seq: 0,
      reason: 'inference exploded',
    });
    expect(logged('result could not be published')[0]).toMatchObject({ seq: 1 });
    expect(String(logged('result could not be published')[0]?.err)).toMatch(/broker gone/);
    expect(logged('scored-frame listener failed')).toHaveLength(4);
    expect(String(logged('scored-frame listener failed')[0]?.err)).toMatch(/listener broke/);
    expect(logged('frame inspection failed')).toHaveLength(4);
    expect(String(logged('frame inspection failed')[0]?.err)).toMatch(/inspect broke/);
    expect(logged('circuit breaker open: the model keeps exceeding the watchdog')[0]).toMatchObject(
      { trips: 2, watchdogMs: 7, model: { version: '1.0.2' } },
    );
    expect(String(logged('circuit breaker listener failed')[0]?.err)).toMatch(
      /open listener broke/,
    );
  });
});
