import pino from 'pino';
import { FramePipeline, type Frame } from '@linesight/agent';
import { renderSurface } from '@linesight/firmware-sim';
import type { FrameResult, Manifest } from '@linesight/protocol';
import {
  ModelSlot,
  OnnxModel,
  WorkerOnnxModel,
  preprocessImage,
  type ScoringModel,
} from '@linesight/vision';
import sharp from 'sharp';
import { percentiles, round } from './stats.ts';

/** Options of the agent benchmark. */
export interface AgentBenchOptions {
  onnx: Uint8Array;
  frames: number;
  width: number;
  height: number;
  /** Swap models every N frames in the paced run (0 = no swap run). */
  swapEvery: number;
  /** Frame rate of the paced (swap) run. */
  fps: number;
  progress: (text: string) => void;
}

/** What the agent benchmark measures (milliseconds unless named otherwise). */
export interface AgentBenchResult {
  frameSize: string;
  frames: number;
  preprocessMedianMs: number;
  preprocessP99Ms: number;
  inferenceMedianMs: number;
  inferenceP99Ms: number;
  endToEndMedianMs: number;
  endToEndP99Ms: number;
  overheadRatio: number;
  fps: { threads1: number; threads2: number };
  swaps?: number;
  swapFps?: number;
  framesLostInSwaps?: number;
  steadyP99Ms?: number;
  swapP99Ms?: number;
  swapP99Ratio?: number;
}

const MANIFEST_BASE = {
  schema: 'linesight.manifest/v1' as const,
  name: 'bench',
  sha256: '0'.repeat(64),
  sizeBytes: 1,
  issuedAt: new Date(0).toISOString(),
  keyId: '0'.repeat(16),
};

/**
 * Measures the agent's frame path on this machine: each stage alone, then the
 * real pipeline end to end flat out (1 and 2 inference threads), then a paced
 * stream with model swaps every N frames.
 */
export async function runAgentBench(o: AgentBenchOptions): Promise<AgentBenchResult> {
  o.progress('rendering frames');
  const images: Buffer[] = [];
  for (let i = 0; i < 8; i++) {
    const surface = renderSurface({
      seed: 100 + i,
      width: o.width,
      height: o.height,
      defect: i % 4 === 3 ? 'scratch' : 'none',
    });
    images.push(
      await sharp(surface.pixels, { raw: { width: o.width, height: o.height, channels: 1 } })
        .jpeg({ quality: 90 })
        .toBuffer(),
    );
  }
  const local = await OnnxModel.load(o.onnx);
  const spec = local.contract.inputSpec;
  const manifest = (version: string): Manifest => ({
    ...MANIFEST_BASE,
    version,
    inputSpec: spec,
    outputs: local.contract.outputs,
    threshold: local.contract.threshold,
  });

  // Stages in isolation.
  const warm = Math.min(20, o.frames);
  const pre: number[] = [];
  const inf: number[] = [];
  const tensors: Float32Array[] = [];
  for (let i = 0; i < o.frames + warm; i++) {
    if (i % 50 === 0) o.progress(`isolated stages ${i}/${o.frames + warm}`);
    const t0 = performance.now();
    const tensor = await preprocessImage(images[i % images.length]!, spec);
    const t1 = performance.now();
    if (tensors.length < images.length) tensors.push(tensor.slice());
    await local.run(tensor);
    const t2 = performance.now();
    if (i >= warm) {
      pre.push(t1 - t0);
      inf.push(t2 - t1);
    }
  }
  await local.close();

  // The real pipeline, frames offered as fast as it takes them.
  const flatOut = async (threads: number) => {
    const slot = new ModelSlot<ScoringModel, Manifest>();
    await slot.swap(
      await WorkerOnnxModel.load(o.onnx, { intraOpNumThreads: threads }),
      manifest('1.0.0'),
    );
    const results: FrameResult[] = [];
    const pipeline = new FramePipeline({
      deviceId: 'bench',
      slot,
      queueDepth: 1,
      publish: (r) => results.push(r),
      onCameraError: () => undefined,
      logger: pino({ level: 'silent' }),
    });
    const started = performance.now();
    for (let i = 0; i < o.frames + warm; i++) {
      if (i % 50 === 0)
        o.progress(`pipeline (${threads} thread${threads > 1 ? 's' : ''}) ${i}/${o.frames + warm}`);
      pipeline.frame({ seq: i, capturedAt: new Date(), image: images[i % images.length]! });
      // Offer the next frame once the pipeline can take it without dropping one.
      while (pipeline.inFlight >= 2) await new Promise((r) => setImmediate(r));
    }
    await pipeline.drain();
    const seconds = (performance.now() - started) / 1000;
    await slot.close();
    return { results: results.slice(warm), fps: (o.frames + warm) / seconds };
  };
  const one = await flatOut(1);
  const two = await flatOut(2);

  // End to end = one frame alone through the pipeline (no queueing behind another frame).
  const e2e: number[] = [];
  {
    const slot = new ModelSlot<ScoringModel, Manifest>();
    await slot.swap(await WorkerOnnxModel.load(o.onnx), manifest('1.0.0'));
    const pipeline = new FramePipeline({
      deviceId: 'bench',
      slot,
      queueDepth: 1,
      publish: (r) => e2e.push(r.latencyMs.total),
      onCameraError: () => undefined,
      logger: pino({ level: 'silent' }),
    });
    for (let i = 0; i < o.frames + warm; i++) {
      if (i % 50 === 0) o.progress(`end to end ${i}/${o.frames + warm}`);
      pipeline.frame({ seq: i, capturedAt: new Date(), image: images[i % images.length]! });
      await pipeline.drain();
    }
    await slot.close();
    e2e.splice(0, warm);
  }

  const p = percentiles(pre);
  const i = percentiles(inf);
  const e = percentiles(e2e);
  const result: AgentBenchResult = {
    frameSize: `${o.width}x${o.height} JPEG`,
    frames: o.frames,
    preprocessMedianMs: p.median,
    preprocessP99Ms: p.p99,
    inferenceMedianMs: i.median,
    inferenceP99Ms: i.p99,
    endToEndMedianMs: e.median,
    endToEndP99Ms: e.p99,
    overheadRatio: round((e.median / (p.median + i.median)) * 100) / 100,
    fps: { threads1: round(one.fps), threads2: round(two.fps) },
  };
  if (o.swapEvery > 0) Object.assign(result, await pacedSwaps(o, images, manifest, warm));
  return result;
}

/** A paced stream at `fps` with a swap (load in a new worker, golden run, swap) every N frames. */
async function pacedSwaps(
  o: AgentBenchOptions,
  images: Buffer[],
  manifest: (v: string) => Manifest,
  warm: number,
) {
  const slot = new ModelSlot<ScoringModel, Manifest>();
  await slot.swap(await WorkerOnnxModel.load(o.onnx), manifest('0'));
  const results: FrameResult[] = [];
  const pipeline = new FramePipeline({
    deviceId: 'bench',
    slot,
    queueDepth: 2,
    publish: (r) => results.push(r),
    onCameraError: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  const swapWindows: { fromSeq: number; toSeq: number }[] = [];
  let swapping: Promise<void> = Promise.resolve();
  let swaps = 0;
  let lastSeq = 0;
  const periodMs = 1000 / o.fps;
  const total = o.frames + warm;
  const start = performance.now();
  for (let seq = 0; seq < total; seq++) {
    const due = start + seq * periodMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (seq % 30 === 0) o.progress(`paced ${o.fps} fps with swaps ${seq}/${total}`);
    const frame: Frame = { seq, capturedAt: new Date(), image: images[seq % images.length]! };
    pipeline.frame(frame);
    lastSeq = seq;
    if (seq >= warm && (seq - warm) % o.swapEvery === 0) {
      const window = { fromSeq: seq, toSeq: Number.POSITIVE_INFINITY };
      swapWindows.push(window);
      const version = String(++swaps);
      swapping = swapping.then(async () => {
        const next = await WorkerOnnxModel.load(o.onnx);
        await next.run(
          new Float32Array(
            next.contract.inputSpec.channels *
              next.contract.inputSpec.height *
              next.contract.inputSpec.width,
          ),
        );
        await slot.swap(next, manifest(version));
        // Frames captured during the swap, plus the two that may wait behind it.
        window.toSeq = lastSeq + 2;
      });
    }
  }
  await swapping;
  await pipeline.drain();
  const seconds = (performance.now() - start) / 1000;
  await slot.close();
  const inSwap = (seq: number) => swapWindows.some((w) => seq >= w.fromSeq && seq <= w.toSeq);
  const measured = results.filter((r) => r.seq >= warm);
  const swapLat = measured.filter((r) => inSwap(r.seq)).map((r) => r.latencyMs.total);
  const steadyLat = measured.filter((r) => !inSwap(r.seq)).map((r) => r.latencyMs.total);
  const steadyP99 = percentiles(steadyLat).p99;
  const swapP99 = percentiles(swapLat).p99;
  return {
    swaps,
    swapFps: round(total / seconds),
    framesLostInSwaps: pipeline.counters.droppedOverload + pipeline.counters.unknown,
    steadyP99Ms: steadyP99,
    swapP99Ms: swapP99,
    swapP99Ratio: steadyP99 === 0 ? 0 : round(swapP99 / steadyP99),
  };
}
