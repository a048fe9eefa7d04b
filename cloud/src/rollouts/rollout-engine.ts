import type { Logger } from 'pino';
import { describeError, type ModelAssignment } from '@linesight/protocol';
import type { DesiredStateService } from '../fleet/desired-state-service.ts';
import type { AuditLog } from '../registry/audit-log.ts';
import type { DeviceRecord, DeviceRegistry } from '../registry/device-registry.ts';

/** What the engine reads about a device (not its desired document). */
type DeviceState = Omit<DeviceRecord, 'desired'>;
import type { ModelRegistry } from '../registry/model-registry.ts';
import type { PreviousAssignment, RolloutRecord, RolloutStore } from '../registry/rollout-store.ts';
import { systemClock, type Clock } from './clock.ts';
import { refusal, runsVersion } from './device-progress.ts';
import type { LatencySampler } from './result-sampler.ts';
import {
  evaluateShadowGates,
  evaluateWaveGates,
  sampleOf,
  windowStats,
  type TelemetrySample,
  type WindowStats,
} from './gates.ts';
import {
  ACTIVE_STATES,
  type GateResult,
  type RolloutProgress,
  type RolloutSpec,
} from './rollout-types.ts';

/** The actor the engine's own decisions are recorded under in the audit log. */
export const ENGINE_ACTOR = 'system:rollouts';

/** The URL path (on the cloud) of a model version's artifact. */
export function artifactPath(name: string, version: string): string {
  return `/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/artifact`;
}

/** The part of the desired-state service the engine uses. */
export type DesiredWriter = Pick<DesiredStateService, 'currentMany' | 'setMany'>;

/** Collaborators of the rollout engine. */
export interface RolloutEngineDeps {
  store: RolloutStore;
  devices: DeviceRegistry;
  desired: DesiredWriter;
  models: ModelRegistry;
  audit: AuditLog;
  logger: Logger;
  clock?: Clock;
  /** How often the engine looks at active rollouts. */
  tickMs?: number;
  /** Fewer frames than this in a soak skip the telemetry gates. */
  minFrames?: number;
  /** Per-frame results of soaking devices, for latency gates (telemetry windows otherwise). */
  sampler?: LatencySampler;
}

/** Baseline devices whose frame results are sampled during a soak. */
const BASELINE_SAMPLE = 20;
/** Wave devices whose frame results are sampled during a soak. */
const WAVE_SAMPLE = 50;

/** Soak-window snapshots; kept in memory (a restart during a soak restarts the soak). */
interface Snapshots {
  waveStart: Map<string, TelemetrySample>;
  soakStart: Map<string, TelemetrySample>;
}

/**
 * Drives rollouts through their state machine on a timer: shadow phase,
 * then wave by wave (publish desired state, wait for the devices, soak,
 * evaluate gates, roll back on failure). Every transition is persisted, so
 * a restarted cloud resumes where it was. start() then close().
 */
export class RolloutEngine {
  readonly #d: RolloutEngineDeps;
  readonly #clock: Clock;
  readonly #tickMs: number;
  readonly #snapshots = new Map<string, Snapshots>();
  readonly #plans = new Map<string, string[][]>();
  #timer: unknown;
  /** Ticks and operator actions run one at a time, in order. */
  #lock: Promise<void> = Promise.resolve();
  #queued = false;
  #closed = false;

  constructor(deps: RolloutEngineDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#tickMs = deps.tickMs ?? 250;
  }

  /** Starts the timer; active rollouts of a previous run continue. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = this.#clock.setInterval(() => this.kick(), this.#tickMs);
    this.kick();
  }

  /** Asks for a tick as soon as possible (at most one waits behind the running one). */
  kick(): void {
    if (this.#closed || this.#queued) return;
    this.#queued = true;
    void this.exclusive(async () => {
      this.#queued = false;
      try {
        await this.tick();
      } catch (err) {
        this.#d.logger.error({ err: describeError(err) }, 'rollout tick failed');
      }
    });
  }

  /** Runs `fn` when no tick or other action runs (operator actions use this). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Waits until no tick or action runs or is queued. */
  async idle(): Promise<void> {
    for (let lock = this.#lock; ; lock = this.#lock) {
      await lock;
      if (lock === this.#lock) return;
    }
  }

  /** Stops the timer and waits for a tick in progress; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    await this.idle();
  }

  /** Advances every active rollout once. */
  async tick(): Promise<void> {
    const active = this.#d.store
      .listInStates([...ACTIVE_STATES])
      .filter((r) => r.state !== 'paused');
    if (active.length === 0) return;
    const devices = new Map(this.#d.devices.listReported().map((d) => [d.id, d]));
    for (const record of active) {
      if (this.#closed) return;
      try {
        await this.#advance(record, devices);
      } catch (err) {
        this.#d.logger.error(
          { rollout: record.id, err: describeError(err) },
          'rollout step failed; will retry',
        );
      }
    }
  }

  /** Forgets in-memory soak snapshots of a rollout (its soak restarts on the next tick). */
  restartSoak(id: string): void {
    this.#snapshots.delete(id);
  }

  /** Sends every device the rollout touched back to what it ran before; returns how many. */
  async rollBack(record: RolloutRecord, onlyIds?: readonly string[]): Promise<number> {
    const previous = this.#d.store.previous(record.id);
    const ids = onlyIds ?? [...previous.keys()];
    const changes: [string, PreviousAssignment][] = [];
    for (const id of ids) {
      const p = previous.get(id);
      if (p !== undefined) changes.push([id, p]);
    }
    await this.#publishMany(changes.map(([id, p]) => [id, { model: p.model, shadow: p.shadow }]));
    return changes.length;
  }

  async #advance(record: RolloutRecord, devices: Map<string, DeviceState>): Promise<void> {
    const spec = record.spec;
    const progress = record.progress;
    if (spec === null || progress === null) {
      // Stored by a cloud from before wave plans: nothing to resume from.
      this.#d.store.setState(
        record.id,
        'failed',
        'created before staged rollouts; create it again',
      );
      return;
    }
    const now = this.#clock.now();
    const waves = this.#waves(record);
    const target = this.#assignment(record);
    const elapsedMs = now - progress.phaseStartedAtMs;

    switch (progress.phase) {
      case 'start': {
        if (spec.shadow !== null) {
          const ids = waves.flat();
          this.#recordPrevious(record.id, ids);
          await this.#publishMany(ids.map((id) => [id, { shadow: target }]));
          progress.phase = 'shadow';
          progress.phaseStartedAtMs = now;
          progress.shadow = {
            state: 'running',
            startedAt: new Date(now).toISOString(),
            finishedAt: null,
            gates: [],
          };
          this.#d.store.saveProgress(record.id, progress, 'shadow');
          this.#audit('rollout.shadow_started', record, { devices: ids.length });
          return;
        }
        await this.#startWave(record, progress, waves, 0, devices);
        return;
      }
      case 'shadow': {
        if (spec.shadow === null || progress.shadow === null) return;
        if (elapsedMs < spec.shadow.durationSec * 1000) return;
        const ids = waves.flat();
        const samples = ids.flatMap((id) => {
          const t = devices.get(id)?.telemetry;
          const s = t?.shadow;
          if (t == null || s === undefined) return [];
          if (s.model.name !== record.modelName || s.model.version !== record.modelVersion)
            return [];
          return [
            {
              scored: s.scored,
              agreementRate: s.agreementRate,
              shadowP99Ms: s.latencyMs.p99,
              liveInferenceP99Ms: t.stageLatencyMs?.inference?.p99 ?? t.latencyMs.p99,
            },
          ];
        });
        const gates = evaluateShadowGates(samples, spec.shadow);
        const failed = gates.filter((g) => !g.passed);
        // Clear the shadow slot on every selected device, pass or fail.
        const previous = this.#d.store.previous(record.id);
        await this.#publishMany(
          ids.map((id) => [id, { shadow: previous.get(id)?.shadow ?? null }]),
        );
        progress.shadow.gates = gates;
        progress.shadow.finishedAt = new Date(now).toISOString();
        if (failed.length > 0) {
          progress.shadow.state = 'failed';
          progress.phase = 'done';
          const reason = `shadow gate failed: ${describeGates(failed)}`;
          this.#d.store.saveProgress(record.id, progress, 'rolled_back', reason);
          this.#audit('rollout.rolled_back', record, { phase: 'shadow', reason, gates });
          return;
        }
        progress.shadow.state = 'passed';
        this.#audit('rollout.shadow_passed', record, { gates });
        await this.#startWave(record, progress, waves, 0, devices);
        return;
      }
      case 'applying': {
        const wave = progress.waves[progress.waveIndex];
        const ids = waves[progress.waveIndex] ?? [];
        if (wave === undefined) return;
        const sinceMs = Date.parse(wave.startedAt ?? new Date(now).toISOString());
        let done = 0;
        let failed = 0;
        let onlinePending = 0;
        let pending = 0;
        for (const id of ids) {
          const d = devices.get(id);
          if (runsVersion(d, record.modelName, record.modelVersion)) done++;
          else if (refusal(d, record.modelName, record.modelVersion, sinceMs) !== undefined)
            failed++;
          else {
            pending++;
            if (d?.online) onlinePending++;
          }
        }
        if (spec.direct) {
          // The all-at-once form: no gates and no rollback, as before waves existed.
          if (done === ids.length)
            await this.#finishWave(record, progress, waves, [], true, now, devices);
          else if (pending === 0) {
            wave.state = 'failed';
            wave.finishedAt = new Date(now).toISOString();
            progress.phase = 'done';
            const reason = `${failed} of ${ids.length} devices refused ${target.signed.manifest.name}@${target.signed.manifest.version}`;
            this.#d.store.saveProgress(record.id, progress, 'failed', reason);
            this.#audit('rollout.failed', record, { reason });
          }
          return;
        }
        const limit = spec.gates.maxRefusedOrCrashed;
        if (failed > limit) {
          await this.#failWave(record, progress, waves, now, [
            {
              gate: 'refusedOrCrashed',
              passed: false,
              value: failed,
              limit,
              detail: `${failed} of ${ids.length} wave devices refused or crashed on the version`,
            },
          ]);
          return;
        }
        const timedOut = elapsedMs >= spec.waveTimeoutSec * 1000;
        if (onlinePending > 0 && !timedOut) return;
        if (done === 0) {
          if (!timedOut) return;
          await this.#failWave(record, progress, waves, now, [
            {
              gate: 'reached',
              passed: false,
              value: 0,
              limit: 1,
              detail: `no device of the wave reached the version within ${spec.waveTimeoutSec} s`,
            },
          ]);
          return;
        }
        if (timedOut && failed + onlinePending > limit) {
          await this.#failWave(record, progress, waves, now, [
            {
              gate: 'refusedOrCrashed',
              passed: false,
              value: failed + onlinePending,
              limit,
              detail: `${failed} refused and ${onlinePending} online devices did not reach the version within ${spec.waveTimeoutSec} s`,
            },
          ]);
          return;
        }
        // Offline devices keep their retained desired state and stay pending; the soak starts.
        wave.state = 'soaking';
        wave.soakStartedAt = new Date(now).toISOString();
        progress.phase = 'soaking';
        progress.phaseStartedAtMs = now;
        this.#takeSnapshot(record.id, devices, 'soakStart');
        this.#d.store.saveProgress(record.id, progress);
        return;
      }
      case 'soaking': {
        const wave = progress.waves[progress.waveIndex];
        if (wave === undefined) return;
        if (this.#snapshots.get(record.id)?.soakStart === undefined) {
          // Restarted (or resumed) mid-soak: the soak window starts again now.
          this.#takeSnapshot(record.id, devices, 'soakStart');
          await this.#sample(record, waves, progress.waveIndex, devices);
          progress.phaseStartedAtMs = now;
          wave.soakStartedAt = new Date(now).toISOString();
          this.#d.store.saveProgress(record.id, progress);
          return;
        }
        this.#refreshSoakStart(record, waves[progress.waveIndex] ?? [], devices);
        if (elapsedMs < wave.soakSec * 1000) return;
        const evaluation = this.#evaluateWave(record, progress, waves, devices);
        let gates = evaluation.gates;
        // A soak asked for evidence: a wave with too few frames soaks on (up to the
        // wave timeout more) rather than pass gates it could not evaluate.
        const minFrames = this.#minFrames;
        const framesSeen = Math.min(evaluation.waveScored, evaluation.waveSampled ?? Infinity);
        if (wave.soakSec > 0 && framesSeen < minFrames && gates.every((g) => g.passed)) {
          if (elapsedMs < (wave.soakSec + spec.waveTimeoutSec) * 1000) return;
          gates = [
            ...gates,
            {
              gate: 'soakFrames',
              passed: false,
              value: framesSeen,
              limit: minFrames,
              detail: `the wave scored ${framesSeen} frames in ${Math.round(elapsedMs / 1000)} s of soak, fewer than the ${minFrames} its gates need; is the line running?`,
            },
          ];
        }
        await this.#d.sampler?.unwatch(record.id);
        const failed = gates.filter((g) => !g.passed);
        if (failed.length > 0) await this.#failWave(record, progress, waves, now, gates);
        else await this.#finishWave(record, progress, waves, gates, false, now, devices);
        return;
      }
      case 'done':
        return;
    }
  }

  #evaluateWave(
    record: RolloutRecord,
    progress: RolloutProgress,
    waves: string[][],
    devices: Map<string, DeviceState>,
  ): { gates: GateResult[]; waveScored: number; waveSampled: number | undefined } {
    const spec = record.spec as RolloutSpec;
    const snaps = this.#snapshots.get(record.id);
    const i = progress.waveIndex;
    const ids = waves[i] ?? [];
    const wave = progress.waves[i];
    const sinceMs = Date.parse(wave?.startedAt ?? new Date(0).toISOString());
    const targetRef = `${record.modelName}@${record.modelVersion}`;
    let refused = 0;
    const wavePairs: { before?: TelemetrySample; after: TelemetrySample }[] = [];
    for (const id of ids) {
      const d = devices.get(id);
      if (refusal(d, record.modelName, record.modelVersion, sinceMs) !== undefined) refused++;
      else if (
        d?.online &&
        !runsVersion(d, record.modelName, record.modelVersion) &&
        snaps?.soakStart.get(id)?.model === targetRef
      )
        refused++; // It ran the version at soak start and no longer does: crashed back.
      const t = d?.telemetry;
      if (t == null) continue;
      const after = sampleOf(t);
      if (after.model !== targetRef) continue;
      const before = snaps?.soakStart.get(id);
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
      baselinePairs.push({ before: snaps?.soakStart.get(id), after });
    }
    let baseline: WindowStats | null = baselinePairs.length > 0 ? windowStats(baselinePairs) : null;
    if (baseline === null || baseline.scored < this.#minFrames) {
      // Nobody left on the previous version (the last wave): compare with the
      // wave devices' own history before the wave, since their agents started.
      const own = ids.flatMap((id) => {
        const s = snaps?.waveStart.get(id);
        return s && s.model !== null && s.model !== targetRef ? [{ after: s }] : [];
      });
      if (own.length > 0) baseline = windowStats(own);
    }
    let frames: { wave: number[]; baseline: number[] } | undefined;
    if (this.#d.sampler !== undefined) {
      frames = { wave: [], baseline: [] };
      const own: number[] = [];
      const waveSet = new Set(ids);
      const soakStartMs = Date.parse(wave?.soakStartedAt ?? new Date(0).toISOString());
      for (const [id, list] of this.#d.sampler.samples(record.id)) {
        for (const f of list) {
          if (!waveSet.has(id)) {
            if (f.model !== targetRef) frames.baseline.push(f.inferenceMs);
          } else if (f.model === targetRef) {
            if (f.atMs >= soakStartMs) frames.wave.push(f.inferenceMs);
          } else own.push(f.inferenceMs); // a wave device before its swap
        }
      }
      // Nobody left on the previous version (the last wave): its own devices' frames before the swap.
      if (frames.baseline.length < this.#minFrames) frames.baseline.push(...own);
    }
    const waveStats = windowStats(wavePairs);
    return {
      gates: evaluateWaveGates({
        wave: waveStats,
        baseline,
        refusedOrCrashed: refused,
        limits: spec.gates,
        minFrames: this.#minFrames,
        ...(frames !== undefined ? { frames } : {}),
      }),
      waveScored: waveStats.scored,
      waveSampled: frames?.wave.length,
    };
  }

  /** Frames a wave (and its baseline) must have scored for the telemetry gates. */
  get #minFrames(): number {
    return this.#d.minFrames ?? 10;
  }

  /** Starts sampling frame results of (some of) the wave's devices and of devices not yet moved. */
  async #sample(
    record: RolloutRecord,
    waves: string[][],
    index: number,
    devices: Map<string, DeviceState>,
  ): Promise<void> {
    const sampler = this.#d.sampler;
    if (sampler === undefined) return;
    const online = (id: string) => devices.get(id)?.online === true;
    const wave = (waves[index] ?? []).filter(online).slice(0, WAVE_SAMPLE);
    const baseline = waves
      .slice(index + 1)
      .flat()
      .filter(online)
      .slice(0, BASELINE_SAMPLE);
    try {
      await sampler.watch(record.id, [...wave, ...baseline]);
    } catch (err) {
      this.#d.logger.warn(
        { rollout: record.id, err: describeError(err) },
        'could not sample results; latency gates use telemetry',
      );
    }
  }

  async #startWave(
    record: RolloutRecord,
    progress: RolloutProgress,
    waves: string[][],
    index: number,
    devices: Map<string, DeviceState>,
  ): Promise<void> {
    const now = this.#clock.now();
    const wave = progress.waves[index];
    if (wave === undefined) return;
    const ids = waves[index] ?? [];
    progress.waveIndex = index;
    progress.phase = 'applying';
    progress.phaseStartedAtMs = now;
    wave.state = 'applying';
    wave.startedAt = new Date(now).toISOString();
    this.#recordPrevious(record.id, ids);
    this.#takeSnapshot(record.id, devices, 'waveStart');
    this.#snapshots.get(record.id)?.soakStart.clear();
    // Persist before publishing: a crash in between re-publishes the same state, never skips it.
    this.#d.store.saveProgress(record.id, progress, 'in_progress');
    // Sample results from before the swap: the last wave's baseline is its own devices' old frames.
    await this.#sample(record, waves, index, devices);
    const target = this.#assignment(record);
    await this.#publishMany(ids.map((id) => [id, { model: target }]));
    this.#audit('rollout.wave_started', record, {
      wave: index + 1,
      devices: ids.length,
      percent: wave.percent,
    });
  }

  async #finishWave(
    record: RolloutRecord,
    progress: RolloutProgress,
    waves: string[][],
    gates: GateResult[],
    direct: boolean,
    now: number,
    devices: Map<string, DeviceState>,
  ): Promise<void> {
    const wave = progress.waves[progress.waveIndex];
    if (wave === undefined) return;
    wave.state = 'passed';
    wave.gates = gates;
    wave.finishedAt = new Date(now).toISOString();
    if (!direct)
      this.#audit('rollout.wave_passed', record, { wave: progress.waveIndex + 1, gates });
    let next = progress.waveIndex + 1;
    // Waves with no devices (a fleet smaller than the number of waves) pass at once.
    while (next < progress.waves.length && (waves[next] ?? []).length === 0) {
      const empty = progress.waves[next] as (typeof progress.waves)[number];
      empty.state = 'passed';
      empty.finishedAt = wave.finishedAt;
      next++;
    }
    if (next >= progress.waves.length) {
      progress.phase = 'done';
      this.#d.store.saveProgress(record.id, progress, 'completed');
      this.#snapshots.delete(record.id);
      this.#audit('rollout.completed', record, { devices: waves.flat().length });
      return;
    }
    await this.#startWave(record, progress, waves, next, devices);
  }

  async #failWave(
    record: RolloutRecord,
    progress: RolloutProgress,
    waves: string[][],
    now: number,
    gates: GateResult[],
  ): Promise<void> {
    const wave = progress.waves[progress.waveIndex];
    if (wave === undefined) return;
    const ids = waves[progress.waveIndex] ?? [];
    const failed = gates.filter((g) => !g.passed);
    const reason = `wave ${progress.waveIndex + 1} failed its gates: ${describeGates(failed)}`;
    wave.gates = gates;
    wave.state = 'rolled_back';
    wave.finishedAt = new Date(now).toISOString();
    progress.phase = 'done';
    // Roll back first, then record the end state: a crash in between rolls back again on resume.
    await this.rollBack(record, ids);
    await this.#d.sampler?.unwatch(record.id);
    this.#d.store.saveProgress(record.id, progress, 'rolled_back', reason);
    this.#snapshots.delete(record.id);
    this.#d.logger.warn({ rollout: record.id, reason }, 'rollout wave rolled back');
    this.#audit('rollout.rolled_back', record, {
      wave: progress.waveIndex + 1,
      devices: ids.length,
      reason,
      gates,
    });
  }

  /**
   * A wave device's soak window starts at its first telemetry on the new
   * version: the snapshot taken when the soak began may predate its swap.
   */
  #refreshSoakStart(
    record: RolloutRecord,
    ids: readonly string[],
    devices: Map<string, DeviceState>,
  ): void {
    const soakStart = this.#snapshots.get(record.id)?.soakStart;
    if (soakStart === undefined) return;
    const targetRef = `${record.modelName}@${record.modelVersion}`;
    for (const id of ids) {
      if (soakStart.get(id)?.model === targetRef) continue;
      const t = devices.get(id)?.telemetry;
      if (t == null) continue;
      const sample = sampleOf(t);
      if (sample.model === targetRef) soakStart.set(id, sample);
      else soakStart.delete(id);
    }
  }

  #takeSnapshot(id: string, devices: Map<string, DeviceState>, which: keyof Snapshots): void {
    const snaps = this.#snapshots.get(id) ?? { waveStart: new Map(), soakStart: new Map() };
    this.#snapshots.set(id, snaps);
    snaps[which].clear();
    for (const [deviceId, d] of devices)
      if (d.telemetry) snaps[which].set(deviceId, sampleOf(d.telemetry));
  }

  #recordPrevious(id: string, deviceIds: readonly string[]): void {
    const previous = new Map<string, PreviousAssignment>();
    const currents = this.#d.desired.currentMany(deviceIds);
    for (const deviceId of deviceIds) {
      const current = currents.get(deviceId);
      previous.set(deviceId, { model: current?.model ?? null, shadow: current?.shadow ?? null });
    }
    this.#d.store.recordPrevious(id, previous);
  }

  /** Sets part of many devices' desired state, keeping their other fields; publishes concurrently. */
  async #publishMany(
    changes: readonly [
      string,
      { model?: ModelAssignment | null; shadow?: ModelAssignment | null },
    ][],
  ): Promise<void> {
    const currents = this.#d.desired.currentMany(changes.map(([deviceId]) => deviceId));
    await this.#d.desired.setMany(
      changes.map(([deviceId, change]) => {
        const current = currents.get(deviceId) ?? { model: null };
        return [deviceId, { ...current, ...change }];
      }),
    );
  }

  #waves(record: RolloutRecord): string[][] {
    // A rollout's wave plan never changes after it is created.
    let waves = this.#plans.get(record.id);
    if (waves === undefined) {
      const stored = this.#d.store.waves(record.id);
      waves = stored.length > 0 ? stored : [record.deviceIds];
      this.#plans.set(record.id, waves);
    }
    return waves;
  }

  #assignment(record: RolloutRecord): ModelAssignment {
    const model = this.#d.models.get(record.modelName, record.modelVersion);
    return { signed: model.signed, artifactUrl: artifactPath(model.name, model.version) };
  }

  #audit(action: string, record: RolloutRecord, details: Record<string, unknown>): void {
    this.#d.audit.record(ENGINE_ACTOR, action, `rollout:${record.id}`, {
      model: `${record.modelName}@${record.modelVersion}`,
      ...details,
    });
  }
}

function describeGates(failed: readonly GateResult[]): string {
  return failed
    .map((g) => `${g.gate} ${g.value ?? 'n/a'} (limit ${g.limit}): ${g.detail}`)
    .join('; ');
}
