import type { Logger } from 'pino';
import { LinesightError, describeError, type ModelAssignment } from '@linesight/protocol';
import type { DesiredStateService } from '../fleet/desired-state-service.ts';
import type { AuditLog } from '../registry/audit-log.ts';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import type { ModelRegistry } from '../registry/model-registry.ts';
import type { PreviousAssignment, RolloutRecord, RolloutStore } from '../registry/rollout-store.ts';
import type { DesiredContent } from '../signing/desired-issuer.ts';
import { systemClock, type Clock } from './clock.ts';
import { SerialRunner } from './serial-runner.ts';
import type { DeviceState } from './device-progress.ts';
import { DeviceSnapshot } from './device-snapshot.ts';
import { evaluateShadowGates, sampleOf } from './gates.ts';
import { assignmentOf } from './model-assignment.ts';
import type { LatencySampler } from './result-sampler.ts';
import { storedPlan } from './rollout-plan.ts';
import {
  ACTIVE_STATES,
  DEFAULT_ON_DEADLINE,
  type GateResult,
  type LateDevice,
  type MissedDeadline,
  type RolloutProgress,
  type RolloutSpec,
  type WaveProgress,
} from './rollout-types.ts';
import {
  refreshSoakStart,
  shadowSamples,
  tallyWave,
  takeSnapshot,
  waveEvidence,
  type Snapshot,
  type TargetModel,
} from './wave-evidence.ts';
import {
  LATE_NAMED,
  describeGates,
  describeLate,
  judgeApplying,
  judgeSoak,
  sampledDevices,
} from './wave-judge.ts';

/** The actor the engine's own decisions are recorded under in the audit log. */
export const ENGINE_ACTOR = 'system:rollouts';

/** The part of the desired-state service the engine uses. */
export type DesiredWriter = Pick<DesiredStateService, 'patchMany'>;

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

/**
 * Telemetry snapshots of a wave, kept in memory: a restart during a soak
 * restarts the soak, and rebuilds the wave-start snapshot of the rollout's
 * devices from the telemetry stored with what each ran before.
 */
interface Snapshots {
  waveStart: Snapshot;
  soakStart: Snapshot;
}

/** One step of one rollout: the record, its spec and progress, and what the devices report now. */
interface Step {
  record: RolloutRecord;
  spec: RolloutSpec;
  progress: RolloutProgress;
  waves: readonly (readonly string[])[];
  target: TargetModel;
  devices: ReadonlyMap<string, DeviceState>;
  now: number;
}

/**
 * Drives rollouts through their state machine and makes every change of it:
 * the timer moves them along (shadow phase, then wave by wave: publish
 * desired state, wait for the devices, soak, evaluate gates, roll back on
 * failure, act on missed deadlines), and operators pause, resume and abort
 * through it. Every transition is persisted, so a restarted cloud resumes
 * where it was. start() then close().
 */
export class RolloutEngine {
  readonly #d: RolloutEngineDeps;
  readonly #clock: Clock;
  readonly #snapshots = new Map<string, Snapshots>();
  /** What the devices report, as each tick sees it. */
  readonly #devices: DeviceSnapshot;
  /** Ticks and operator actions run one at a time, in order. */
  readonly #runner: SerialRunner;

  constructor(deps: RolloutEngineDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#devices = new DeviceSnapshot(deps.devices);
    this.#runner = new SerialRunner(this.#clock, deps.tickMs ?? 250, async () => {
      try {
        await this.tick();
      } catch (err) {
        this.#d.logger.error({ err: describeError(err) }, 'rollout tick failed');
      }
    });
  }

  /** Starts the timer; active rollouts of a previous run continue. */
  start(): void {
    this.#runner.start();
  }

  /** Asks for a tick as soon as possible (at most one waits behind the running one). */
  kick(): void {
    this.#runner.kick();
  }

  /** Runs `fn` when no tick or other action runs (operator actions use this). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#runner.exclusive(fn);
  }

  /** Waits until no tick or action runs or is queued. */
  idle(): Promise<void> {
    return this.#runner.idle();
  }

  /** Stops the timer and waits for a tick in progress; idempotent. */
  close(): Promise<void> {
    return this.#runner.close();
  }

  /** Advances every active rollout once. */
  async tick(): Promise<void> {
    const active = this.#d.store
      .listInStates([...ACTIVE_STATES])
      .filter((r) => r.state !== 'paused');
    if (active.length === 0) return;
    // A copy, unchanged through this tick's awaits (the registry's own map moves on).
    const devices = this.#devices.current();
    for (const record of active) {
      if (this.#runner.closed) return;
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

  /** Holds a running rollout: no new wave starts and no gate is evaluated until resumed. */
  async pause(id: string, actor: string): Promise<void> {
    await this.exclusive(async () => {
      const record = this.#d.store.get(id);
      if (!['pending', 'shadow', 'in_progress'].includes(record.state))
        throw new LinesightError(
          'ERR_CLOUD_CONFLICT',
          `rollout ${id} is ${record.state}; only a running rollout can be paused`,
        );
      this.#d.store.setState(id, 'paused');
      this.#d.audit.record(actor, 'rollout.paused', `rollout:${id}`, { from: record.state });
    });
  }

  /**
   * Continues a paused rollout: a soak that was under way starts again, and
   * a phase paused by its deadline gets a new deadline.
   */
  async resume(id: string, actor: string): Promise<void> {
    await this.exclusive(async () => {
      const record = this.#d.store.get(id);
      if (record.state !== 'paused')
        throw new LinesightError(
          'ERR_CLOUD_CONFLICT',
          `rollout ${id} is ${record.state}, not paused`,
        );
      const progress = record.progress;
      const phase = progress?.phase ?? 'start';
      const state = phase === 'start' ? 'pending' : phase === 'shadow' ? 'shadow' : 'in_progress';
      this.#snapshots.delete(id);
      const deadline = progress?.deadline;
      // Only the resume after the deadline's pause: a later operator pause keeps the new deadline.
      if (
        deadline?.action === 'pause' &&
        deadline.resumedAt === undefined &&
        progress?.phase === deadline.phase
      ) {
        progress.phaseStartedAtMs = this.#clock.now();
        deadline.resumedAt = new Date(progress.phaseStartedAtMs).toISOString();
        this.#d.store.saveProgress(id, progress, state);
      } else this.#d.store.setState(id, state);
      this.#d.audit.record(actor, 'rollout.resumed', `rollout:${id}`, { to: state });
    });
    this.kick();
  }

  /** Stops a rollout and sends every device it moved back to what it ran before. */
  async abort(id: string, actor: string): Promise<void> {
    await this.exclusive(async () => {
      const record = this.#d.store.get(id);
      if (!ACTIVE_STATES.has(record.state))
        throw new LinesightError('ERR_CLOUD_CONFLICT', `rollout ${id} is already ${record.state}`);
      const restored = this.#rollBack(record);
      await this.#d.sampler?.unwatch(id);
      const reason = `aborted by ${actor}`;
      const progress = record.progress;
      if (progress !== null) {
        const at = new Date(this.#clock.now()).toISOString();
        for (const w of progress.waves)
          if (w.state === 'applying' || w.state === 'soaking' || w.state === 'passed') {
            w.state = 'rolled_back';
            w.finishedAt = at;
          }
        if (progress.shadow?.state === 'running') progress.shadow.state = 'failed';
        progress.phase = 'done';
        this.#d.store.saveProgress(id, progress, 'aborted', reason);
      } else this.#d.store.setState(id, 'aborted', reason);
      this.#snapshots.delete(id);
      this.#d.audit.record(actor, 'rollout.aborted', `rollout:${id}`, {
        devicesRestored: restored,
      });
    });
  }

  async #advance(record: RolloutRecord, devices: ReadonlyMap<string, DeviceState>): Promise<void> {
    const { spec, progress } = record;
    if (spec === null || progress === null) {
      // Stored by a cloud from before wave plans: nothing to resume from.
      this.#d.store.setState(
        record.id,
        'failed',
        'created before staged rollouts; create it again',
      );
      return;
    }
    const step: Step = {
      record,
      spec,
      progress,
      waves: this.#waves(record),
      target: { name: record.modelName, version: record.modelVersion },
      devices,
      now: this.#clock.now(),
    };
    switch (progress.phase) {
      case 'start':
        return this.#start(step);
      case 'shadow':
        return this.#shadow(step);
      case 'applying':
        return this.#applying(step);
      case 'soaking':
        return this.#soaking(step);
      case 'done':
        return;
    }
  }

  /** A new rollout: the shadow phase when asked for, else the first wave. */
  async #start(step: Step): Promise<void> {
    const { record, spec, progress, waves, now } = step;
    if (spec.shadow === null) return this.#startWave(step, 0);
    const ids = waves.flat();
    const target = this.#assignment(record);
    this.#d.desired.patchMany(
      ids.map((id) => [id, { shadow: target }]),
      (previous) => this.#recordPrevious(record.id, ids, previous, step.devices),
    );
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
  }

  /** The shadow phase ends after its duration (its deadline): gates, then live or rolled back. */
  async #shadow(step: Step): Promise<void> {
    const { record, spec, progress, waves, now } = step;
    if (spec.shadow === null || progress.shadow === null) return;
    if (now - progress.phaseStartedAtMs < spec.shadow.durationSec * 1000) return;
    const ids = waves.flat();
    const gates = evaluateShadowGates(shadowSamples(ids, step.devices, step.target), spec.shadow);
    const failed = gates.filter((g) => !g.passed);
    // Clear the shadow slot on every selected device, pass or fail.
    const previous = this.#d.store.previous(record.id);
    this.#d.desired.patchMany(ids.map((id) => [id, { shadow: previous.get(id)?.shadow ?? null }]));
    progress.shadow.gates = gates;
    progress.shadow.finishedAt = new Date(now).toISOString();
    if (failed.length > 0) {
      progress.shadow.state = 'failed';
      progress.phase = 'done';
      const reason = `shadow gate failed: ${describeGates(failed)}`;
      this.#d.store.saveProgress(record.id, progress, 'rolled_back', reason);
      this.#d.logger.info({ rollout: record.id, reason }, 'rollout rolled back after its shadow');
      this.#audit('rollout.rolled_back', record, { phase: 'shadow', reason, gates });
      return;
    }
    progress.shadow.state = 'passed';
    this.#audit('rollout.shadow_passed', record, { gates });
    await this.#startWave(step, 0);
  }

  /** A wave's devices were told to run the version: wait for them, up to the deadline. */
  async #applying(step: Step): Promise<void> {
    const { record, spec, progress, waves, now } = step;
    const wave = progress.waves[progress.waveIndex];
    if (wave === undefined) return;
    const ids = waves[progress.waveIndex] ?? [];
    const sinceMs = Date.parse(wave.startedAt ?? new Date(now).toISOString());
    const verdict = judgeApplying({
      spec,
      waveSize: ids.length,
      tally: tallyWave(ids, step.devices, step.target, sinceMs),
      elapsedMs: now - progress.phaseStartedAtMs,
      target: step.target,
    });
    switch (verdict.kind) {
      case 'wait':
        return;
      case 'reached':
        return this.#finishWave(step, [], true);
      case 'refused': {
        wave.state = 'failed';
        wave.finishedAt = new Date(now).toISOString();
        progress.phase = 'done';
        const reason = verdict.reason;
        this.#d.store.saveProgress(record.id, progress, 'failed', reason);
        this.#d.logger.warn({ rollout: record.id, reason }, 'rollout failed');
        this.#audit('rollout.failed', record, { reason });
        return;
      }
      case 'fail':
        return this.#failWave(step, verdict.gates);
      case 'missed':
        return this.#missDeadline(step, 'applying', verdict.detail, verdict.late, verdict.gates);
      case 'soak':
        break;
    }
    // Offline devices keep their retained desired state and stay pending; the soak starts.
    if (verdict.late.length > 0) wave.late = verdict.late;
    wave.state = 'soaking';
    wave.soakStartedAt = new Date(now).toISOString();
    progress.phase = 'soaking';
    progress.phaseStartedAtMs = now;
    this.#snapshotsOf(record.id).soakStart = takeSnapshot(step.devices);
    this.#d.store.saveProgress(record.id, progress);
  }

  /** A wave soaks; after its soak time the gates decide (with too few frames, up to the deadline). */
  async #soaking(step: Step): Promise<void> {
    const { record, spec, progress, waves, now } = step;
    const wave = progress.waves[progress.waveIndex];
    if (wave === undefined) return;
    const ids = waves[progress.waveIndex] ?? [];
    const snaps = this.#snapshots.get(record.id);
    if (snaps === undefined) {
      // Restarted (or resumed) mid-soak: the soak window starts again now.
      this.#snapshotsOf(record.id).soakStart = takeSnapshot(step.devices);
      await this.#sample(record, waves, progress.waveIndex, step.devices);
      progress.phaseStartedAtMs = now;
      wave.soakStartedAt = new Date(now).toISOString();
      this.#d.store.saveProgress(record.id, progress);
      return;
    }
    refreshSoakStart(snaps.soakStart, ids, step.devices, step.target);
    const elapsedMs = now - progress.phaseStartedAtMs;
    if (elapsedMs < wave.soakSec * 1000) return;
    const evidence = waveEvidence({
      target: step.target,
      waves,
      index: progress.waveIndex,
      devices: step.devices,
      waveStart: snaps.waveStart,
      soakStart: snaps.soakStart,
      waveStartedAtMs: Date.parse(wave.startedAt ?? new Date(0).toISOString()),
      soakStartedAtMs: Date.parse(wave.soakStartedAt ?? new Date(0).toISOString()),
      frameSamples: this.#d.sampler?.samples(record.id),
      limits: spec.gates,
      minFrames: this.#minFrames,
    });
    const verdict = judgeSoak({
      soakSec: wave.soakSec,
      waveTimeoutSec: spec.waveTimeoutSec,
      elapsedMs,
      evidence,
      minFrames: this.#minFrames,
      ids,
      devices: step.devices,
    });
    switch (verdict.kind) {
      case 'wait':
        return;
      case 'missed':
        return this.#missDeadline(step, 'soaking', verdict.detail, verdict.late, verdict.gates);
      case 'fail':
        await this.#d.sampler?.unwatch(record.id);
        return this.#failWave(step, verdict.gates);
      case 'pass':
        await this.#d.sampler?.unwatch(record.id);
        return this.#finishWave(step, verdict.gates, false);
    }
  }

  /**
   * A phase passed its deadline: says so (wave progress, audit entry, log
   * line), then fails the wave (`gates` hold why) or pauses the rollout, as
   * its spec says.
   */
  async #missDeadline(
    step: Step,
    phase: MissedDeadline['phase'],
    detail: string,
    late: LateDevice[],
    gates: GateResult[],
  ): Promise<void> {
    const { record, spec, progress, now } = step;
    const wave = progress.waves[progress.waveIndex] as WaveProgress;
    const action = spec.onDeadline ?? DEFAULT_ON_DEADLINE;
    const missed: MissedDeadline = {
      phase,
      wave: progress.waveIndex + 1,
      at: new Date(now).toISOString(),
      action,
      detail,
      late,
    };
    progress.deadline = missed;
    wave.late = late;
    const lateText = describeLate(late);
    this.#d.logger.warn(
      {
        rollout: record.id,
        phase,
        wave: missed.wave,
        action,
        late: late.length,
        lateDevices: late.slice(0, LATE_NAMED),
      },
      `rollout ${phase} deadline passed: ${detail}${lateText}`,
    );
    this.#audit('rollout.deadline_passed', record, {
      phase,
      wave: missed.wave,
      action,
      detail,
      late: late.length,
      lateDevices: late.slice(0, LATE_NAMED),
    });
    if (action === 'pause') {
      const reason = `paused: ${phase} deadline of wave ${missed.wave} passed: ${detail}${lateText}`;
      this.#d.store.saveProgress(record.id, progress, 'paused', reason);
      this.#audit('rollout.paused', record, { from: record.state, reason });
      return;
    }
    if (spec.direct) {
      wave.state = 'failed';
      wave.finishedAt = missed.at;
      progress.phase = 'done';
      const reason = `${detail}${lateText}`;
      this.#d.store.saveProgress(record.id, progress, 'failed', reason);
      this.#audit('rollout.failed', record, { reason });
      return;
    }
    await this.#failWave(step, gates, lateText);
  }

  /** Frames a wave (and its baseline) must have scored for the telemetry gates. */
  get #minFrames(): number {
    return this.#d.minFrames ?? 10;
  }

  /** Starts sampling frame results of (some of) the wave's devices and of devices not yet moved. */
  async #sample(
    record: RolloutRecord,
    waves: readonly (readonly string[])[],
    index: number,
    devices: ReadonlyMap<string, DeviceState>,
  ): Promise<void> {
    const sampler = this.#d.sampler;
    if (sampler === undefined) return;
    try {
      await sampler.watch(record.id, sampledDevices(waves, index, devices));
    } catch (err) {
      this.#d.logger.warn(
        { rollout: record.id, err: describeError(err) },
        'could not sample results; latency gates use telemetry',
      );
    }
  }

  async #startWave(step: Step, index: number): Promise<void> {
    const { record, progress, waves } = step;
    const now = this.#clock.now();
    const wave = progress.waves[index];
    if (wave === undefined) return;
    const ids = waves[index] ?? [];
    progress.waveIndex = index;
    progress.phase = 'applying';
    progress.phaseStartedAtMs = now;
    wave.state = 'applying';
    wave.startedAt = new Date(now).toISOString();
    this.#snapshots.set(record.id, { waveStart: takeSnapshot(step.devices), soakStart: new Map() });
    // Persist before storing the devices' documents: a crash in between stores them again, never
    // skips them. They are published in the background (the cloud republishes every stored one
    // at start, so a crash mid-publish still reaches every device).
    this.#d.store.saveProgress(record.id, progress, 'in_progress');
    // Sample results from before the swap: the last wave's baseline is its own devices' old frames.
    await this.#sample(record, waves, index, step.devices);
    const target = this.#assignment(record);
    this.#d.desired.patchMany(
      ids.map((id) => [id, { model: target }]),
      (previous) => this.#recordPrevious(record.id, ids, previous, step.devices),
    );
    this.#audit('rollout.wave_started', record, {
      wave: index + 1,
      devices: ids.length,
      percent: wave.percent,
    });
  }

  async #finishWave(step: Step, gates: GateResult[], direct: boolean): Promise<void> {
    const { record, progress, waves, now } = step;
    const wave = progress.waves[progress.waveIndex];
    if (wave === undefined) return;
    wave.state = 'passed';
    wave.gates = gates;
    wave.finishedAt = new Date(now).toISOString();
    if (!direct) {
      this.#d.logger.info({ rollout: record.id, wave: progress.waveIndex + 1 }, 'wave passed');
      this.#audit('rollout.wave_passed', record, { wave: progress.waveIndex + 1, gates });
    }
    let next = progress.waveIndex + 1;
    // Waves with no devices (a fleet smaller than the number of waves) pass at once.
    while (next < progress.waves.length && (waves[next] ?? []).length === 0) {
      const empty = progress.waves[next] as WaveProgress;
      empty.state = 'passed';
      empty.finishedAt = wave.finishedAt;
      next++;
    }
    if (next >= progress.waves.length) {
      progress.phase = 'done';
      this.#d.store.saveProgress(record.id, progress, 'completed');
      this.#snapshots.delete(record.id);
      this.#d.logger.info({ rollout: record.id }, 'rollout completed');
      this.#audit('rollout.completed', record, { devices: waves.flat().length });
      return;
    }
    await this.#startWave(step, next);
  }

  async #failWave(step: Step, gates: GateResult[], lateText = ''): Promise<void> {
    const { record, progress, waves, now } = step;
    const wave = progress.waves[progress.waveIndex];
    if (wave === undefined) return;
    const ids = waves[progress.waveIndex] ?? [];
    const failed = gates.filter((g) => !g.passed);
    const reason = `wave ${progress.waveIndex + 1} failed its gates: ${describeGates(failed)}${lateText}`;
    wave.gates = gates;
    wave.state = 'rolled_back';
    wave.finishedAt = new Date(now).toISOString();
    progress.phase = 'done';
    // Roll back first, then record the end state: a crash in between rolls back again on resume.
    this.#rollBack(record, ids);
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

  /** Sends every device the rollout touched (or only `onlyIds`) back to what it ran before; returns how many. */
  #rollBack(record: RolloutRecord, onlyIds?: readonly string[]): number {
    const previous = this.#d.store.previous(record.id);
    const ids = onlyIds ?? [...previous.keys()];
    const changes: [string, Partial<DesiredContent>][] = [];
    for (const id of ids) {
      const p = previous.get(id);
      if (p !== undefined) changes.push([id, { model: p.model, shadow: p.shadow }]);
    }
    this.#d.desired.patchMany(changes);
    return changes.length;
  }

  /** A rollout's snapshots; after a restart, the wave start's as stored with the previous assignments. */
  #snapshotsOf(id: string): Snapshots {
    let snaps = this.#snapshots.get(id);
    if (snaps === undefined) {
      const waveStart: Snapshot = new Map();
      for (const [deviceId, p] of this.#d.store.previous(id))
        if (p.telemetry) waveStart.set(deviceId, p.telemetry);
      snaps = { waveStart, soakStart: new Map() };
      this.#snapshots.set(id, snaps);
    }
    return snaps;
  }

  /**
   * Stores what `deviceIds` ran before the rollout changed them (read once,
   * with the change) and their telemetry then.
   */
  #recordPrevious(
    id: string,
    deviceIds: readonly string[],
    currents: ReadonlyMap<string, DesiredContent>,
    devices: ReadonlyMap<string, DeviceState>,
  ): void {
    const previous = new Map<string, PreviousAssignment>();
    for (const deviceId of deviceIds) {
      const current = currents.get(deviceId);
      const telemetry = devices.get(deviceId)?.telemetry;
      previous.set(deviceId, {
        model: current?.model ?? null,
        shadow: current?.shadow ?? null,
        telemetry: telemetry ? sampleOf(telemetry) : null,
      });
    }
    this.#d.store.recordPrevious(id, previous);
  }

  #waves(record: RolloutRecord): readonly (readonly string[])[] {
    // The store keeps a plan parsed: it never changes after the rollout is created.
    return storedPlan(this.#d.store.waves(record.id), record.deviceIds);
  }

  #assignment(record: RolloutRecord): ModelAssignment {
    return assignmentOf(this.#d.models.get(record.modelName, record.modelVersion));
  }

  #audit(action: string, record: RolloutRecord, details: Record<string, unknown>): void {
    this.#d.audit.record(ENGINE_ACTOR, action, `rollout:${record.id}`, {
      model: `${record.modelName}@${record.modelVersion}`,
      ...details,
    });
  }
}
