import { refusal, runsVersion, type DeviceState } from './device-progress.ts';
import {
  evaluateWaveGates,
  sampleOf,
  windowStats,
  type ShadowSample,
  type TelemetrySample,
  type WindowStats,
} from './gates.ts';
import type { FrameSample } from './result-sampler.ts';
import type { GateLimits, GateResult, LateDevice } from './rollout-types.ts';

/** The model a rollout moves devices to. */
export interface TargetModel {
  name: string;
  version: string;
}

/** Per-device telemetry snapshots, keyed by device id. */
export type Snapshot = Map<string, TelemetrySample>;

/** Where the devices of a wave stand while it is applied. */
export interface WaveTally {
  /** Devices that report running the version. */
  done: number;
  /** Devices that refused (or crash-looped on) the version since the wave started. */
  failed: number;
  /** Devices neither done nor failed. */
  pending: number;
  /** Pending devices that are online (so they should be getting there). */
  onlinePending: number;
  /** Each pending device, with what it reports instead of the version. */
  late: LateDevice[];
}

/** "name@version", as telemetry samples name their model. */
export function refOf(target: TargetModel): string {
  return `${target.name}@${target.version}`;
}

/**
 * Why a device has not reached the version: offline, still busy (the phase it
 * reports), or it handled its desired state and still reports another version.
 */
export function lateReason(d: DeviceState | undefined, target: TargetModel): string {
  if (d === undefined) return 'unknown device';
  const r = d.reported;
  if (!d.online) return `offline${d.lastSeen ? ` since ${d.lastSeen}` : ' (never seen)'}`;
  if (r === null) return 'online but has never reported its state';
  const running = r.model ? `${r.model.name}@${r.model.version}` : 'no model';
  if (r.phase !== 'running' && r.phase !== 'idle')
    return `${r.phase} (reports ${running}, desired revision ${r.desiredRevision} handled)`;
  const err = r.lastError;
  const lastError =
    err?.model?.name === target.name && err.model.version === target.version
      ? `; last error ${err.code}: ${err.message}`
      : '';
  return `reports ${running} after handling desired revision ${r.desiredRevision}${lastError}`;
}

/** Counts a wave's devices by how far they got with `target` since `sinceMs`. */
export function tallyWave(
  ids: readonly string[],
  devices: ReadonlyMap<string, DeviceState>,
  target: TargetModel,
  sinceMs: number,
): WaveTally {
  const tally: WaveTally = { done: 0, failed: 0, pending: 0, onlinePending: 0, late: [] };
  for (const id of ids) {
    const d = devices.get(id);
    if (runsVersion(d, target.name, target.version)) tally.done++;
    else if (refusal(d, target.name, target.version, sinceMs) !== undefined) tally.failed++;
    else {
      tally.pending++;
      if (d?.online) tally.onlinePending++;
      tally.late.push({ id, online: d?.online ?? false, reason: lateReason(d, target) });
    }
  }
  return tally;
}

/** What each device's telemetry says about `target` in its shadow slot. */
export function shadowSamples(
  ids: readonly string[],
  devices: ReadonlyMap<string, DeviceState>,
  target: TargetModel,
): ShadowSample[] {
  return ids.flatMap((id) => {
    const t = devices.get(id)?.telemetry;
    const s = t?.shadow;
    if (t == null || s === undefined) return [];
    if (s.model.name !== target.name || s.model.version !== target.version) return [];
    return [
      {
        scored: s.scored,
        agreementRate: s.agreementRate,
        shadowP99Ms: s.latencyMs.p99,
        liveInferenceP99Ms: t.stageLatencyMs?.inference?.p99 ?? t.latencyMs.p99,
      },
    ];
  });
}

/** The telemetry sample of every device that has telemetry. */
export function takeSnapshot(devices: ReadonlyMap<string, DeviceState>): Snapshot {
  const snapshot: Snapshot = new Map();
  for (const [deviceId, d] of devices)
    if (d.telemetry) snapshot.set(deviceId, sampleOf(d.telemetry));
  return snapshot;
}

/**
 * A wave device's soak window starts at its first telemetry on the new
 * version: the snapshot taken when the soak began may predate its swap.
 * Updates `soakStart` in place.
 */
export function refreshSoakStart(
  soakStart: Snapshot,
  ids: readonly string[],
  devices: ReadonlyMap<string, DeviceState>,
  target: TargetModel,
): void {
  const targetRef = refOf(target);
  for (const id of ids) {
    if (soakStart.get(id)?.model === targetRef) continue;
    const t = devices.get(id)?.telemetry;
    if (t == null) continue;
    const sample = sampleOf(t);
    if (sample.model === targetRef) soakStart.set(id, sample);
    else soakStart.delete(id);
  }
}

/** Everything a soaked wave's gates are evaluated on. */
export interface WaveEvidenceInput {
  target: TargetModel;
  /** The rollout's wave plan and the index of the wave being evaluated. */
  waves: readonly (readonly string[])[];
  index: number;
  devices: ReadonlyMap<string, DeviceState>;
  /** Telemetry when the wave started, and when (per device) its soak window started. */
  waveStart: Snapshot | undefined;
  soakStart: Snapshot | undefined;
  /** When the wave started and its soak started (ms since epoch). */
  waveStartedAtMs: number;
  soakStartedAtMs: number;
  /** Per-frame results of sampled devices, when a sampler runs. */
  frameSamples: Map<string, FrameSample[]> | undefined;
  limits: GateLimits;
  minFrames: number;
}

/** The gates of a soaked wave, and how many frames they saw. */
export interface WaveEvidence {
  gates: GateResult[];
  waveScored: number;
  waveSampled: number | undefined;
}

/**
 * Gathers a soaked wave's evidence (refusals and crash-backs, telemetry deltas
 * of the wave and of devices still on the previous version, sampled frame
 * latencies) and evaluates the wave gates on it.
 */
export function waveEvidence(input: WaveEvidenceInput): WaveEvidence {
  const { target, waves, index: i, devices, soakStart, minFrames } = input;
  const ids = waves[i] ?? [];
  const targetRef = refOf(target);
  let refused = 0;
  const wavePairs: { before?: TelemetrySample; after: TelemetrySample }[] = [];
  for (const id of ids) {
    const d = devices.get(id);
    if (refusal(d, target.name, target.version, input.waveStartedAtMs) !== undefined) refused++;
    else if (
      d?.online &&
      !runsVersion(d, target.name, target.version) &&
      soakStart?.get(id)?.model === targetRef
    )
      refused++; // It ran the version at soak start and no longer does: crashed back.
    const t = d?.telemetry;
    if (t == null) continue;
    const after = sampleOf(t);
    if (after.model !== targetRef) continue;
    const before = soakStart?.get(id);
    // Only the frames since the device's first telemetry on the version count.
    if (before?.model === targetRef) wavePairs.push({ before, after });
  }
  const moved = new Set(waves.slice(0, i + 1).flat());
  const baselinePairs: { before?: TelemetrySample; after: TelemetrySample }[] = [];
  for (const id of waves.flat()) {
    if (moved.has(id)) continue;
    const d = devices.get(id);
    if (!d?.online || d.telemetry == null) continue;
    const after = sampleOf(d.telemetry);
    if (after.model === null || after.model === targetRef) continue;
    baselinePairs.push({ before: soakStart?.get(id), after });
  }
  let baseline: WindowStats | null = baselinePairs.length > 0 ? windowStats(baselinePairs) : null;
  if (baseline === null || baseline.scored < minFrames) {
    // Nobody left on the previous version (the last wave): compare with the
    // wave devices' own history before the wave, since their agents started.
    const own = ids.flatMap((id) => {
      const s = input.waveStart?.get(id);
      return s && s.model !== null && s.model !== targetRef ? [{ after: s }] : [];
    });
    if (own.length > 0) baseline = windowStats(own);
  }
  const frames =
    input.frameSamples === undefined
      ? undefined
      : frameLatencies(input.frameSamples, ids, targetRef, input.soakStartedAtMs, minFrames);
  const waveStats = windowStats(wavePairs);
  return {
    gates: evaluateWaveGates({
      wave: waveStats,
      baseline,
      refusedOrCrashed: refused,
      limits: input.limits,
      minFrames,
      ...(frames !== undefined ? { frames } : {}),
    }),
    waveScored: waveStats.scored,
    waveSampled: frames?.wave.length,
  };
}

/**
 * Inference latencies of the wave's frames on the version since its soak
 * started, and of baseline frames on the previous version; with too few
 * baseline frames (the last wave), the wave devices' own frames before their swap.
 */
function frameLatencies(
  samples: Map<string, FrameSample[]>,
  ids: readonly string[],
  targetRef: string,
  soakStartMs: number,
  minFrames: number,
): { wave: number[]; baseline: number[] } {
  const frames = { wave: [] as number[], baseline: [] as number[] };
  const own: number[] = [];
  const waveSet = new Set(ids);
  for (const [id, list] of samples) {
    for (const f of list) {
      if (!waveSet.has(id)) {
        if (f.model !== targetRef) frames.baseline.push(f.inferenceMs);
      } else if (f.model === targetRef) {
        if (f.atMs >= soakStartMs) frames.wave.push(f.inferenceMs);
      } else own.push(f.inferenceMs); // a wave device before its swap
    }
  }
  if (frames.baseline.length < minFrames) frames.baseline.push(...own);
  return frames;
}
