import pino from 'pino';
import {
  AgentConfigSchema,
  FramePipeline,
  SHADOW_THREAD_NICE,
  ShadowRunner,
} from '@linesight/agent';
import { renderSurface } from '@linesight/firmware-sim';
import type { FrameResult, InputSpec, Manifest, ResizeKernel } from '@linesight/protocol';
import {
  ModelSlot,
  OnnxModel,
  WorkerOnnxModel,
  preprocessImage,
  readModelContract,
  type ScoringModel,
} from '@linesight/vision';
import sharp from 'sharp';
import { OpenCvPeer, type PeerAnswer } from './opencv-peer.ts';
import { median, percentiles, round } from './stats.ts';
import { pacedSwaps } from './swap-run.ts';

/** Options of the agent benchmark. */
export interface AgentBenchOptions {
  onnx: Uint8Array;
  /** Frames per measurement (latency: pairs, split over `rounds`). */
  frames: number;
  /** Interleaved rounds the latency pairs are split into; the ratio is their median. */
  rounds: number;
  width: number;
  height: number;
  /** Swap models every N frames in the paced run (0 = no swap run). */
  swapEvery: number;
  /** The version the swap run alternates with (default: this model republished as another version). */
  swapOnnx?: Uint8Array;
  /** Frame rate of the paced (swap) run. */
  fps: number;
  /** Channels of the encoded camera frames: 1 (a grey camera, the default) or 3 (grey content in a colour JPEG). */
  frameChannels?: 1 | 3;
  /** Also time `scripts/opencv-peer.py` on the same frames, interleaved with ours. */
  peer?: 'opencv';
  /**
   * Also run a paced stream at `fps` in alternating blocks without and with a
   * shadow model (this ONNX, or `shadowOnnx`) and compare the live latency.
   */
  shadow?: boolean;
  shadowOnnx?: Uint8Array;
  /**
   * Preprocess with this resize kernel instead of the model's own input spec
   * (to measure what the kernel saves before training a model with it).
   */
  resizeKernel?: ResizeKernel;
  progress: (text: string) => void;
}

/** How the latency figures were taken, reported with them. */
export interface LatencyMethod {
  /** Each frame timed through the isolated stages and through the pipeline, back to back. */
  sampling: 'paired-interleaved';
  /** Which of the two goes first alternates from frame to frame. */
  order: 'alternating';
  /** Frames in the pipeline at once while latency is measured. */
  framesInFlight: 1;
  /** Frames (and isolated runs) start at most this often: half the 1-thread throughput. */
  paceFps: number;
  warmupPairs: number;
  rounds: number;
  pairsPerRound: number;
  /** ONNX Runtime intra-op threads, the same for the in-process and the worker session. */
  intraOpThreads: number;
  /** libvips threads per image (sharp.concurrency()), process-wide, so the same for both. */
  sharpConcurrency: number;
  /** The agent's defaults, which the benchmarked pipeline runs with (and its circuit breaker). */
  watchdogMs: number;
  queueDepth: number;
  /** End to end: from handing the frame to the pipeline to its publish callback. */
  endToEnd: 'frame() to publish()';
}

/** What the agent benchmark measures (milliseconds unless named otherwise). */
export interface AgentBenchResult {
  frameSize: string;
  /** The input spec the frames were preprocessed with, and whether the bench overrode the model's. */
  inputSpec: InputSpec;
  inputSpecOverridden: boolean;
  frames: number;
  preprocessMedianMs: number;
  preprocessP99Ms: number;
  inferenceMedianMs: number;
  inferenceP99Ms: number;
  endToEndMedianMs: number;
  endToEndP99Ms: number;
  /** Median over pairs of end to end minus the isolated stages of the same frame. */
  overheadMedianMs: number;
  /** Median over rounds of: end-to-end median / (preprocess median + session.run median). */
  overheadRatio: number;
  overheadRatioRounds: number[];
  latencyMethod: LatencyMethod;
  /** Frames per second with the pipeline kept full (no frame dropped), by inference threads. */
  fps: { threads1: number; threads2: number };
  swaps?: number;
  swapFps?: number;
  framesLostInSwaps?: number;
  steadyP99Ms?: number;
  swapP99Ms?: number;
  swapP99Ratio?: number;
  swapVersions?: string[];
  swapSecondVersion?: 'given' | 'republished';
  /** With a peer: ours over the peer's median preprocess time, same frames, same run. */
  peerPreprocessMedianMs?: number;
  peerPreprocessRatio?: number;
  peer?: PeerResult;
  /** With a shadow: live end-to-end p50 with the shadow over without it, blocks interleaved. */
  shadowLiveP50Ratio?: number;
  shadow?: ShadowResult;
}

/** Live latency with and without a shadow model, in interleaved blocks of a paced stream. */
export interface ShadowResult {
  fps: number;
  blockFrames: number;
  blocks: number;
  liveP50OffMs: number;
  liveP50OnMs: number;
  liveP99OffMs: number;
  liveP99OnMs: number;
  /** Median over rounds (one block pair each) of on/off p50. */
  shadowLiveP50Ratio: number;
  shadowLiveP50RatioRounds: number[];
  /** Frames offered to the shadow while it was on, and what became of them. */
  shadowOffered: number;
  shadowScored: number;
  shadowSkipped: number;
  /** Skipped to give way to the live model (part of shadowSkipped). */
  shadowYielded: number;
  /** Scored from the live input tensor, not decoded again. */
  shadowReusedInputs: number;
  framesLost: number;
}

/** The interleaved comparison with a peer implementation of the preprocessing. */
export type PeerResult =
  | {
      name: 'opencv';
      opencv: string;
      python: string;
      frames: number;
      rounds: number;
      /** Our preprocess (decode, resize, normalize) median in this phase. */
      preprocessMedianMs: number;
      /** The peer's, timed by itself (decode, resize, normalize; its IPC excluded). */
      peerPreprocessMedianMs: number;
      peerDecodeMedianMs: number;
      /** libjpeg's decode-time scale the peer used (IMREAD_REDUCED_GRAYSCALE_n). */
      peerReduce: number;
      /** Median over rounds of ours / peer median. */
      peerPreprocessRatio: number;
      peerPreprocessRatioRounds: number[];
      /** Mean absolute difference of the mean grey level of both outputs (a sanity check). */
      meanLevelDiff: number;
    }
  | { name: 'opencv'; skipped: string };

const MANIFEST_BASE = {
  schema: 'linesight.manifest/v1' as const,
  name: 'bench',
  sha256: '0'.repeat(64),
  sizeBytes: 1,
  issuedAt: new Date(0).toISOString(),
  keyId: '0'.repeat(16),
};

/** The agent's own defaults, so the benchmarked pipeline is the one a device runs. */
const AGENT = {
  watchdogMs: Number(AgentConfigSchema.properties.watchdogMs.default),
  queueDepth: Number(AgentConfigSchema.properties.queueDepth.default),
  watchdogTrips: Number(AgentConfigSchema.properties.watchdogTrips.default),
  downloadTimeoutMs: Number(AgentConfigSchema.properties.downloadTimeoutMs.default),
  crashLoopStarts: Number(AgentConfigSchema.properties.crashLoopStarts.default),
};
const INTRA_OP_THREADS = 1;

/** A frame pipeline set up as the agent sets up its own, publishing to `publish`. */
export function agentPipeline(
  slot: ModelSlot<ScoringModel, Manifest>,
  publish: (r: FrameResult) => void,
) {
  return new FramePipeline({
    deviceId: 'bench',
    slot,
    queueDepth: AGENT.queueDepth,
    publish,
    onCameraError: () => undefined,
    circuitBreaker: { tripsToOpen: AGENT.watchdogTrips, onOpen: () => undefined },
    logger: pino({ level: 'silent' }),
  });
}

/** A model slot holding the model in a worker thread, with the agent's watchdog. */
export async function workerSlot(
  onnxBytes: Uint8Array,
  manifest: Manifest,
  intraOpNumThreads?: number,
  threadNice?: number,
): Promise<ModelSlot<ScoringModel, Manifest>> {
  const slot = new ModelSlot<ScoringModel, Manifest>();
  await slot.swap(
    await WorkerOnnxModel.load(onnxBytes, {
      ...(intraOpNumThreads === undefined ? {} : { intraOpNumThreads }),
      ...(threadNice === undefined ? {} : { threadNice }),
      watchdogMs: AGENT.watchdogMs,
    }),
    manifest,
  );
  return slot;
}

/**
 * Measures the agent's frame path on this machine: throughput with the
 * pipeline kept full (1 and 2 inference threads); then latency, each frame
 * timed through the isolated stages and end to end through the real pipeline
 * in interleaved pairs paced below capacity; then, optionally, a paced stream
 * with model swaps every N frames.
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
    // A grey camera writes one-channel JPEGs (as the simulated camera does); without
    // 'b-w' sharp would widen the frame to a three-channel YCbCr JPEG.
    const raw = sharp(surface.pixels, { raw: { width: o.width, height: o.height, channels: 1 } });
    images.push(
      await (o.frameChannels === 3 ? raw : raw.toColourspace('b-w'))
        .jpeg({ quality: 90 })
        .toBuffer(),
    );
  }
  const contract = readModelContract(o.onnx);
  const spec: InputSpec =
    o.resizeKernel === undefined
      ? contract.inputSpec
      : { ...contract.inputSpec, resizeKernel: o.resizeKernel };
  const manifest = (version: string): Manifest => ({
    ...MANIFEST_BASE,
    version,
    inputSpec: spec,
    outputs: contract.outputs,
    threshold: contract.threshold,
  });
  const warm = Math.min(20, o.frames);

  // Throughput: frames offered as fast as the pipeline takes them without dropping one.
  const flatOut = async (threads: number) => {
    const slot = await workerSlot(o.onnx, manifest('1.0.0'), threads);
    let freed: (() => void) | undefined;
    const pipeline = agentPipeline(slot, () => freed?.());
    let started = 0;
    for (let i = 0; i < o.frames + warm; i++) {
      if (i % 50 === 0)
        o.progress(
          `throughput (${threads} thread${threads > 1 ? 's' : ''}) ${i}/${o.frames + warm}`,
        );
      if (i === warm) {
        await pipeline.drain();
        started = performance.now();
      }
      pipeline.frame({ seq: i, capturedAt: new Date(), image: images[i % images.length]! });
      // One frame in inference and one in preprocessing keep both stages busy. Wait for a
      // verdict rather than poll: polling would take a core from the stages on a 2-core machine.
      while (pipeline.inFlight >= 2) await new Promise<void>((r) => (freed = r));
    }
    await pipeline.drain();
    const seconds = (performance.now() - started) / 1000;
    await slot.close();
    assertAllScored(pipeline, 'throughput');
    return o.frames / seconds;
  };
  const fps1 = await flatOut(1);
  const fps2 = await flatOut(2);

  // Latency: isolated stages and end to end on the same frame, back to back, under the same load.
  const local = await OnnxModel.load(o.onnx, { intraOpNumThreads: INTRA_OP_THREADS });
  const slot = await workerSlot(o.onnx, manifest('1.0.0'), INTRA_OP_THREADS);
  let published: ((at: number) => void) | undefined;
  const pipeline = agentPipeline(slot, () => published?.(performance.now()));
  const isolated = async (image: Buffer) => {
    const t0 = performance.now();
    const tensor = await preprocessImage(image, spec);
    const t1 = performance.now();
    await local.run(tensor);
    return { preprocessMs: t1 - t0, inferenceMs: performance.now() - t1 };
  };
  const endToEnd = async (seq: number, image: Buffer) => {
    const done = new Promise<number>((resolve) => (published = resolve));
    const t0 = performance.now();
    pipeline.frame({ seq, capturedAt: new Date(), image });
    const ms = (await done) - t0;
    // The verdict is out; wait for the pipeline's own bookkeeping so the next frame finds it idle.
    await pipeline.drain();
    return ms;
  };
  const paceFps = fps1 / 2;
  const periodMs = 1000 / paceFps;
  let due = performance.now();
  // Each run starts no earlier than one period after the previous one started.
  const paced = async <T>(run: () => Promise<T>): Promise<T> => {
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    due = performance.now() + periodMs;
    return run();
  };
  const rounds = Math.min(o.rounds, o.frames);
  const perRound = Math.ceil(o.frames / rounds);
  const pre: number[] = [];
  const inf: number[] = [];
  const e2e: number[] = [];
  const extra: number[] = [];
  const roundRatios: number[] = [];
  let seq = 0;
  for (let pair = -warm; pair < rounds * perRound; pair++) {
    if (pair % 50 === 0) o.progress(`latency ${Math.max(0, pair)}/${rounds * perRound} pairs`);
    const image = images[(pair + warm) % images.length]!;
    const stages = () => paced(() => isolated(image));
    const whole = () => paced(() => endToEnd(seq++, image));
    let s: { preprocessMs: number; inferenceMs: number };
    let e: number;
    if (pair % 2 === 0) {
      s = await stages();
      e = await whole();
    } else {
      e = await whole();
      s = await stages();
    }
    if (pair < 0) continue;
    pre.push(s.preprocessMs);
    inf.push(s.inferenceMs);
    e2e.push(e);
    extra.push(e - s.preprocessMs - s.inferenceMs);
    if ((pair + 1) % perRound === 0) {
      const from = pair + 1 - perRound;
      roundRatios.push(overheadRatio(e2e.slice(from), pre.slice(from), inf.slice(from)));
    }
  }
  await slot.close();
  await local.close();
  assertAllScored(pipeline, 'latency');

  const p = percentiles(pre);
  const i = percentiles(inf);
  const e = percentiles(e2e);
  const result: AgentBenchResult = {
    inputSpec: spec,
    inputSpecOverridden: o.resizeKernel !== undefined,
    frameSize: `${o.width}x${o.height} ${o.frameChannels === 3 ? 'colour' : 'grey'} JPEG`,
    frames: o.frames,
    preprocessMedianMs: p.median,
    preprocessP99Ms: p.p99,
    inferenceMedianMs: i.median,
    inferenceP99Ms: i.p99,
    endToEndMedianMs: e.median,
    endToEndP99Ms: e.p99,
    overheadMedianMs: round(median(extra)),
    overheadRatio: Math.round(median(roundRatios) * 1000) / 1000,
    overheadRatioRounds: roundRatios,
    latencyMethod: {
      sampling: 'paired-interleaved',
      order: 'alternating',
      framesInFlight: 1,
      paceFps: round(paceFps),
      warmupPairs: warm,
      rounds,
      pairsPerRound: perRound,
      intraOpThreads: INTRA_OP_THREADS,
      sharpConcurrency: sharp.concurrency(),
      watchdogMs: AGENT.watchdogMs,
      queueDepth: AGENT.queueDepth,
      endToEnd: 'frame() to publish()',
    },
    fps: { threads1: round(fps1), threads2: round(fps2) },
  };
  if (o.swapEvery > 0)
    Object.assign(
      result,
      await pacedSwaps({
        onnx: o.onnx,
        ...(o.swapOnnx === undefined ? {} : { otherOnnx: o.swapOnnx }),
        frames: o.frames,
        warm,
        swapEvery: o.swapEvery,
        fps: o.fps,
        images,
        agent: AGENT,
        pipeline: agentPipeline,
        progress: o.progress,
      }),
    );
  if (o.shadow === true) {
    const shadow = await shadowPhase(o, images, manifest, warm);
    result.shadow = shadow;
    result.shadowLiveP50Ratio = shadow.shadowLiveP50Ratio;
  }
  if (o.peer === 'opencv') {
    const peer = await peerPhase(o, images, spec, warm);
    result.peer = peer;
    if (!('skipped' in peer)) {
      result.peerPreprocessMedianMs = peer.peerPreprocessMedianMs;
      result.peerPreprocessRatio = peer.peerPreprocessRatio;
    }
  }
  return result;
}

/**
 * A paced stream at `fps` through the agent's pipeline, in blocks that
 * alternate without and with a shadow model fed as the agent feeds it
 * (offered every live verdict, yielding to live frames).
 */
async function shadowPhase(
  o: AgentBenchOptions,
  images: Buffer[],
  manifest: (v: string) => Manifest,
  warm: number,
): Promise<ShadowResult> {
  const slot = await workerSlot(o.onnx, manifest('1.0.0'), INTRA_OP_THREADS);
  // As the agent loads a shadow model: its inference thread at a low priority.
  const shadowSlot = await workerSlot(
    o.shadowOnnx ?? o.onnx,
    manifest('2.0.0'),
    INTRA_OP_THREADS,
    SHADOW_THREAD_NICE,
  );
  const blockFrames = 30;
  const rounds = Math.max(1, Math.min(o.rounds, Math.floor(o.frames / blockFrames)));
  const blocksPerRound = Math.max(2, 2 * Math.round(o.frames / blockFrames / rounds / 2));
  const total = warm + rounds * blocksPerRound * blockFrames;
  let shadowOn = false;
  let offered = 0;
  const latency = new Map<number, number>();
  // eslint-disable-next-line prefer-const -- the pipeline and the runner refer to each other
  let pipeline: FramePipeline;
  const shadow = new ShadowRunner(shadowSlot, pino({ level: 'silent' }), {
    liveBusy: () => pipeline.inFlight > 0,
  });
  pipeline = new FramePipeline({
    deviceId: 'bench',
    slot,
    queueDepth: AGENT.queueDepth,
    publish: (r) => latency.set(r.seq, r.latencyMs.total),
    keepInput: () => shadowOn && shadow.wantsInput(),
    onScored: (frame, r, extras) => {
      if (!shadowOn) return;
      offered++;
      shadow.offer(frame, r, extras.input);
    },
    onCameraError: () => undefined,
    circuitBreaker: { tripsToOpen: AGENT.watchdogTrips, onOpen: () => undefined },
    logger: pino({ level: 'silent' }),
  });
  const periodMs = 1000 / o.fps;
  const blockOf = (seq: number) => Math.floor((seq - warm) / blockFrames);
  // Blocks alternate off/on; which goes first alternates from round to round.
  const isOn = (block: number) =>
    (block % 2 === 1) !== (Math.floor(block / blocksPerRound) % 2 === 1);
  const start = performance.now();
  for (let seq = 0; seq < total; seq++) {
    const wait = start + seq * periodMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (seq % 30 === 0) o.progress(`shadow on/off blocks at ${o.fps} fps ${seq}/${total}`);
    shadowOn = seq >= warm ? isOn(blockOf(seq)) : seq % 2 === 0;
    pipeline.frame({ seq, capturedAt: new Date(), image: images[seq % images.length]! });
  }
  await pipeline.drain();
  await shadow.drain();
  const stats = shadow.stats();
  const yielded = shadow.yielded;
  const reusedInputs = shadow.reusedInputs;
  await shadowSlot.close();
  await slot.close();
  const on: number[] = [];
  const off: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const roundOn: number[] = [];
    const roundOff: number[] = [];
    for (let b = r * blocksPerRound; b < (r + 1) * blocksPerRound; b++) {
      for (let k = 0; k < blockFrames; k++) {
        const ms = latency.get(warm + b * blockFrames + k);
        if (ms === undefined) continue;
        (isOn(b) ? roundOn : roundOff).push(ms);
      }
    }
    on.push(...roundOn);
    off.push(...roundOff);
    const m = median(roundOff);
    ratios.push(m === 0 ? 0 : Math.round((median(roundOn) / m) * 1000) / 1000);
  }
  const pOn = percentiles(on);
  const pOff = percentiles(off);
  return {
    fps: o.fps,
    blockFrames,
    blocks: rounds * blocksPerRound,
    liveP50OffMs: pOff.median,
    liveP50OnMs: pOn.median,
    liveP99OffMs: pOff.p99,
    liveP99OnMs: pOn.p99,
    shadowLiveP50Ratio: Math.round(median(ratios) * 1000) / 1000,
    shadowLiveP50RatioRounds: ratios,
    shadowOffered: offered,
    shadowScored: stats?.scored ?? 0,
    shadowSkipped: stats?.skipped ?? 0,
    shadowYielded: yielded,
    shadowReusedInputs: reusedInputs,
    framesLost: pipeline.counters.droppedOverload + pipeline.counters.unknown,
  };
}

/**
 * Our preprocessing and the OpenCV peer's on the same frames, one frame each
 * in turn (which goes first alternates), in `rounds` rounds.
 */
async function peerPhase(
  o: AgentBenchOptions,
  images: Buffer[],
  spec: InputSpec,
  warm: number,
): Promise<PeerResult> {
  o.progress('starting the OpenCV peer');
  const peer = await OpenCvPeer.start(spec);
  if ('skipped' in peer) return { name: 'opencv', skipped: peer.skipped };
  try {
    const ours: number[] = [];
    const theirs: number[] = [];
    const decode: number[] = [];
    const levelDiff: number[] = [];
    const ratios: number[] = [];
    let reduce = 0;
    const rounds = Math.min(o.rounds, o.frames);
    const perRound = Math.ceil(o.frames / rounds);
    for (let k = -warm; k < rounds * perRound; k++) {
      if (k % 50 === 0) o.progress(`OpenCV peer ${Math.max(0, k)}/${rounds * perRound} frames`);
      const image = images[(k + warm) % images.length]!;
      const timeOurs = async () => {
        const t0 = performance.now();
        const tensor = await preprocessImage(image, spec);
        return { ms: performance.now() - t0, tensor };
      };
      let a: { ms: number; tensor: Float32Array };
      let b: PeerAnswer;
      if (k % 2 === 0) {
        a = await timeOurs();
        b = await peer.preprocess(image);
      } else {
        b = await peer.preprocess(image);
        a = await timeOurs();
      }
      if (k < 0) continue;
      ours.push(a.ms);
      theirs.push(b.ms);
      decode.push(b.decodeMs);
      reduce = b.reduce;
      levelDiff.push(Math.abs(meanLevel(a.tensor, spec) - b.mean));
      if ((k + 1) % perRound === 0) {
        const from = k + 1 - perRound;
        const m = median(theirs.slice(from));
        ratios.push(m === 0 ? 0 : Math.round((median(ours.slice(from)) / m) * 1000) / 1000);
      }
    }
    return {
      name: 'opencv',
      opencv: peer.info.opencv,
      python: `${peer.info.python} (${peer.info.pythonPath})`,
      frames: ours.length,
      rounds,
      preprocessMedianMs: round(median(ours)),
      peerPreprocessMedianMs: round(median(theirs)),
      peerDecodeMedianMs: round(median(decode)),
      peerReduce: reduce,
      peerPreprocessRatio: Math.round(median(ratios) * 1000) / 1000,
      peerPreprocessRatioRounds: ratios,
      meanLevelDiff: round(median(levelDiff)),
    };
  } finally {
    await peer.close();
  }
}

/** The mean grey level (0-255) of a one-channel tensor, undoing the spec's normalization. */
function meanLevel(tensor: Float32Array, spec: InputSpec): number {
  let sum = 0;
  for (const v of tensor) sum += v;
  const mean = sum / tensor.length;
  return (mean * (spec.std[0] ?? 1) + (spec.mean[0] ?? 0)) / spec.scale;
}

/** Fails the benchmark if a frame was dropped or not scored: its latency would mean nothing. */
function assertAllScored(pipeline: FramePipeline, phase: string): void {
  const { droppedOverload, unknown } = pipeline.counters;
  if (droppedOverload > 0 || unknown > 0)
    throw new Error(`${phase}: ${droppedOverload} frames dropped and ${unknown} not scored`);
}

/** End-to-end median over the sum of the isolated stages' medians, to 0.001. */
function overheadRatio(e2e: number[], pre: number[], inf: number[]): number {
  const stages = median(pre) + median(inf);
  return stages === 0 ? 0 : Math.round((median(e2e) / stages) * 1000) / 1000;
}
