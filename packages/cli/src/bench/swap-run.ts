import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DesiredGuard, ModelStore, ModelUpdater, type FramePipeline } from '@linesight/agent';
import {
  describeError,
  generateSigningKeyPair,
  sha256Hex,
  signDocument,
  signManifest,
  type DesiredState,
  type FrameResult,
  type Manifest,
  type ModelAssignment,
  type SigningKeyPair,
} from '@linesight/protocol';
import {
  InferenceWorkerPool,
  ModelSlot,
  goldenScoresOf,
  readModelContract,
  withModelContract,
  type ScoringModel,
} from '@linesight/vision';
import { percentiles, round } from './stats.ts';

/** Golden tolerance of the manifests, as the cloud signs them. */
const GOLDEN_TOLERANCE = 1e-3;
const DEVICE_ID = 'bench';

/** What the paced swap run needs from the agent benchmark. */
export interface SwapRunOptions {
  /** The two versions the run alternates between (live first). */
  onnx: Uint8Array;
  /** Default: `republished(onnx)`, the same graph as another version. */
  otherOnnx?: Uint8Array;
  frames: number;
  warm: number;
  swapEvery: number;
  fps: number;
  images: Buffer[];
  /** The agent's defaults the updater runs with. */
  agent: { watchdogMs: number; downloadTimeoutMs: number; crashLoopStarts: number };
  /** A pipeline set up as the agent sets up its own, on `slot`. */
  pipeline: (
    slot: ModelSlot<ScoringModel, Manifest>,
    publish: (r: FrameResult) => void,
  ) => FramePipeline;
  progress: (text: string) => void;
}

/** What the paced swap run measures. */
export interface SwapRunResult {
  swaps: number;
  swapFps: number;
  framesLostInSwaps: number;
  steadyP99Ms: number;
  swapP99Ms: number;
  swapP99Ratio: number;
  /** The two versions swapped between (version and sha256 prefix). */
  swapVersions: string[];
  /** Where the second version came from: a model file given, or the first one republished. */
  swapSecondVersion: 'given' | 'republished';
}

/** A version as the cloud publishes it: signed manifest with golden scores, and its bytes. */
interface PublishedVersion {
  bytes: Uint8Array;
  assignment: ModelAssignment;
}

/**
 * The second version of a swap run when none is given: the same graph with a
 * marker in its contract's training notes, so its bytes (and sha256) differ.
 */
export function republished(onnx: Uint8Array): Uint8Array {
  const contract = readModelContract(onnx);
  return withModelContract(onnx, {
    ...contract,
    training: { ...contract.training, benchSwapVariant: 2 },
  });
}

/** Signs a version as the cloud does, with its scores on the golden inputs in the manifest. */
async function publish(
  bytes: Uint8Array,
  version: string,
  signer: SigningKeyPair,
): Promise<PublishedVersion> {
  const contract = readModelContract(bytes);
  const scores = await goldenScoresOf(bytes);
  const manifest: Manifest = {
    schema: 'linesight.manifest/v1',
    name: 'bench',
    version,
    sha256: sha256Hex(bytes),
    sizeBytes: bytes.byteLength,
    inputSpec: contract.inputSpec,
    outputs: contract.outputs,
    threshold: contract.threshold,
    issuedAt: new Date().toISOString(),
    keyId: signer.keyId,
    golden: { scores, tolerance: GOLDEN_TOLERANCE },
  };
  return {
    bytes,
    assignment: {
      signed: signManifest(manifest, signer),
      artifactUrl: `/artifacts/${manifest.sha256}`,
    },
  };
}

/**
 * A paced stream at `fps` through the agent's pipeline while the agent's own
 * update path swaps two versions every `swapEvery` frames: each swap is a
 * signed desired-state document checked by the device's guard, then the
 * model updater verifies the manifest signature, reads and hash-checks the
 * stored artifact, loads it in a new worker, reproduces the golden scores
 * signed in the manifest and swaps between two frames. The artifacts are in
 * the device's model store from the start, so no download is timed.
 */
export async function pacedSwaps(o: SwapRunOptions): Promise<SwapRunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-bench-swaps-'));
  const logger = pino({ level: 'silent' });
  const slot = new ModelSlot<ScoringModel, Manifest>();
  const shadowSlot = new ModelSlot<ScoringModel, Manifest>();
  // As the agent does: swaps take a warm spare thread from a pool the run owns.
  const workers = new InferenceWorkerPool();
  let updater: ModelUpdater | undefined;
  try {
    const signer = generateSigningKeyPair();
    const trusted = [{ keyId: signer.keyId, publicKeyPem: signer.publicKeyPem }];
    o.progress('publishing two versions for the swap run');
    const versions = [
      await publish(o.onnx, '1.0.0', signer),
      await publish(o.otherOnnx ?? republished(o.onnx), '2.0.0', signer),
    ];
    if (
      versions[0]!.assignment.signed.manifest.sha256 ===
      versions[1]!.assignment.signed.manifest.sha256
    )
      throw new Error('the swap run needs two versions with different bytes');
    const store = new ModelStore(join(dir, 'models'));
    await mkdir(store.dir, { recursive: true });
    for (const v of versions)
      await writeFile(store.artifactPath(v.assignment.signed.manifest.sha256), v.bytes);
    const guard = await DesiredGuard.open(dir, trusted);
    const refusals: string[] = [];
    let activations = 0;
    let onActivated: (() => void) | undefined;
    const activeUpdater = new ModelUpdater({
      // Never contacted: both artifacts are already in the store.
      cloudUrl: 'http://127.0.0.1:9',
      username: DEVICE_ID,
      password: 'unused',
      trustedKeys: () => guard.trustedKeys,
      store,
      slot,
      shadowSlot,
      watchdogMs: o.agent.watchdogMs,
      downloadTimeoutMs: o.agent.downloadTimeoutMs,
      crashLoopStarts: o.agent.crashLoopStarts,
      workers,
      logger,
      hooks: {
        phase: () => undefined,
        activated: (_manifest, source) => {
          if (source !== 'update') return;
          activations++;
          onActivated?.();
        },
        refused: (manifest, err) =>
          refusals.push(`${manifest?.version ?? '?'}: ${describeError(err)}`),
        handled: () => undefined,
      },
    });
    updater = activeUpdater;
    let revision = 0;
    // As the device takes desired state: the guard checks it, then the updater applies it.
    const assign = async (v: PublishedVersion) => {
      const doc = signDocument<DesiredState>(
        {
          schema: 'linesight.desired/v1',
          deviceId: DEVICE_ID,
          revision: ++revision,
          issuedAt: new Date().toISOString(),
          expiresAt: new Date(Date.now() + 3600_000).toISOString(),
          keyId: signer.keyId,
          model: v.assignment,
        },
        signer,
      );
      activeUpdater.apply(await guard.check(doc));
      await activeUpdater.idle();
      if (refusals.length > 0) throw new Error(`swap refused: ${refusals.join('; ')}`);
    };
    await assign(versions[0]!);
    activations = 0;

    const results: FrameResult[] = [];
    const pipeline = o.pipeline(slot, (r) => results.push(r));
    const swapWindows: { fromSeq: number; toSeq: number }[] = [];
    let swapping: Promise<void> = Promise.resolve();
    let swaps = 0;
    let lastSeq = 0;
    const periodMs = 1000 / o.fps;
    const total = o.frames + o.warm;
    const start = performance.now();
    for (let seq = 0; seq < total; seq++) {
      const wait = start + seq * periodMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (seq % 30 === 0) o.progress(`paced ${o.fps} fps with swaps ${seq}/${total}`);
      pipeline.frame({ seq, capturedAt: new Date(), image: o.images[seq % o.images.length]! });
      lastSeq = seq;
      if (seq >= o.warm && (seq - o.warm) % o.swapEvery === 0) {
        const window = { fromSeq: seq, toSeq: Number.POSITIVE_INFINITY };
        swapWindows.push(window);
        const next = versions[++swaps % 2]!;
        // One swap at a time, as the old run did: each document waits for the previous swap.
        swapping = swapping.then(async () => {
          onActivated = () => {
            // Frames captured during the swap, plus the two that may wait behind it.
            window.toSeq = lastSeq + 2;
          };
          await assign(next);
        });
      }
    }
    await swapping;
    await pipeline.drain();
    const seconds = (performance.now() - start) / 1000;
    if (activations !== swaps)
      throw new Error(`${swaps} swaps asked for, ${activations} went live through the updater`);
    const inSwap = (seq: number) => swapWindows.some((w) => seq >= w.fromSeq && seq <= w.toSeq);
    const measured = results.filter((r) => r.seq >= o.warm);
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
      swapVersions: versions.map(
        (v) =>
          `${v.assignment.signed.manifest.version} ${v.assignment.signed.manifest.sha256.slice(0, 12)}`,
      ),
      swapSecondVersion: o.otherOnnx === undefined ? 'republished' : 'given',
    };
  } finally {
    await updater?.close();
    await slot.close();
    await shadowSlot.close();
    await workers.close();
    await rm(dir, { recursive: true, force: true });
  }
}
