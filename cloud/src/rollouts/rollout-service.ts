import { randomUUID } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';
import type { DesiredStateService } from '../fleet/desired-state-service.ts';
import type { AuditLog } from '../registry/audit-log.ts';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import type { ModelRegistry } from '../registry/model-registry.ts';
import type { RolloutRecord, RolloutStore } from '../registry/rollout-store.ts';
import {
  refusal,
  runningOf,
  runsVersion,
  type DeviceRolloutState,
  type DeviceState,
} from './device-progress.ts';
import type { RolloutEngine } from './rollout-engine.ts';
import {
  orderDevices,
  planWaves,
  selectDevices,
  storedPlan,
  validateWaves,
} from './rollout-plan.ts';
import {
  ACTIVE_STATES,
  DEFAULT_GATES,
  DEFAULT_SHADOW_MIN_AGREEMENT,
  DEFAULT_ON_DEADLINE,
  type DeadlineAction,
  type DeviceSelector,
  type GateLimits,
  type RolloutProgress,
  type RolloutSpec,
  type WaveProgress,
  type WaveSpec,
} from './rollout-types.ts';

export type { DeviceRolloutState } from './device-progress.ts';

/** One device's progress in a rollout. */
export interface DeviceProgress {
  id: string;
  wave: number;
  state: DeviceRolloutState;
  running: string | null;
  online: boolean;
  error?: string;
  /** Why the device was late when its wave's deadline passed (while it still is). */
  late?: string;
}

/**
 * A rollout with live per-wave and per-device progress. `deviceIds` is the store's own
 * list (shared and frozen): read it, never change it.
 */
export interface RolloutStatus extends Omit<RolloutRecord, 'progress'> {
  waves: (WaveProgress & { counts: Record<DeviceRolloutState, number> })[];
  shadow: RolloutProgress['shadow'];
  devices: DeviceProgress[];
  counts: Record<DeviceRolloutState, number>;
  /**
   * How far the desired-state publishes of the rollout's steps so far are (they go out in
   * the background, paced): devices given a document, and how many of those the broker
   * has acknowledged. A rollout not started yet has 0 of 0.
   */
  publish: { toPublish: number; published: number };
}

/** A rollout's status as a read that may leave out the per-device list gives it. */
export interface RolloutOverview extends Omit<RolloutStatus, 'devices'> {
  /** Each device; left out when asked without (`{ devices: false }`). */
  devices?: DeviceProgress[];
}

/** What a status read asks for. */
export interface StatusView {
  /** Each device's progress too (default true). */
  devices?: boolean;
}

/** What POST /v1/rollouts asks for. */
export interface CreateRolloutInput {
  model: string;
  version: string;
  selector?: DeviceSelector;
  waves?: WaveSpec[];
  gates?: Partial<GateLimits>;
  shadow?: { durationSec: number; minAgreement?: number; maxLatencyRatio?: number };
  waveTimeoutSec?: number;
  onDeadline?: DeadlineAction;
  actor: string;
}

const DEFAULT_WAVE_TIMEOUT_SEC = 600;

function emptyCounts(): Record<DeviceRolloutState, number> {
  return { waiting: 0, pending: 0, done: 0, failed: 0, rolled_back: 0 };
}

/**
 * Rollouts as operators see them: create (validate, select, plan waves,
 * persist, audit), status, pause, resume, abort. The RolloutEngine moves them along.
 */
export class RolloutService {
  readonly #models: ModelRegistry;
  readonly #devices: DeviceRegistry;
  readonly #rollouts: RolloutStore;
  readonly #engine: RolloutEngine;
  readonly #audit: AuditLog;
  readonly #desired: Pick<DesiredStateService, 'countPending'> | undefined;

  constructor(deps: {
    models: ModelRegistry;
    devices: DeviceRegistry;
    rollouts: RolloutStore;
    engine: RolloutEngine;
    audit: AuditLog;
    /** Says which devices' documents are still being published (none: all count as published). */
    desired?: Pick<DesiredStateService, 'countPending'>;
  }) {
    this.#models = deps.models;
    this.#devices = deps.devices;
    this.#rollouts = deps.rollouts;
    this.#engine = deps.engine;
    this.#audit = deps.audit;
    this.#desired = deps.desired;
  }

  /**
   * Starts a rollout of name@version. Without waves, gates or shadow it is the
   * all-at-once form (every selected device at once, no gates). Answers once
   * the first step (shadow or first wave) has been stored; its desired states
   * are published in the background (`publish` in the status says how far).
   */
  async create(input: CreateRolloutInput): Promise<RolloutStatus> {
    const model = this.#models.get(input.model, input.version);
    const direct =
      input.waves === undefined && input.gates === undefined && input.shadow === undefined;
    const waves = input.waves ?? [{ percent: 100, soakSec: 0 }];
    validateWaves(waves);
    const shadow = input.shadow
      ? {
          durationSec: input.shadow.durationSec,
          minAgreement: input.shadow.minAgreement ?? DEFAULT_SHADOW_MIN_AGREEMENT,
          maxLatencyRatio: input.shadow.maxLatencyRatio ?? 2,
        }
      : null;
    if (shadow !== null && !(shadow.durationSec > 0))
      throw new LinesightError('ERR_CLOUD_BAD_REQUEST', 'shadow.durationSec must be above 0');
    const selector = input.selector ?? {};
    if (selector.ids !== undefined) {
      const missing = [...new Set(selector.ids)].filter((id) => !this.#devices.has(id));
      if (missing.length > 0) {
        throw new LinesightError('ERR_CLOUD_NOT_FOUND', `unknown devices: ${missing.join(', ')}`, {
          details: { missing },
        });
      }
    }
    const spec: RolloutSpec = {
      selector,
      waves,
      gates: { ...DEFAULT_GATES, ...input.gates },
      shadow,
      direct,
      waveTimeoutSec: input.waveTimeoutSec ?? DEFAULT_WAVE_TIMEOUT_SEC,
      onDeadline: input.onDeadline ?? DEFAULT_ON_DEADLINE,
    };
    const id = randomUUID();
    await this.#engine.exclusive(async () => {
      const selected = selectDevices(this.#devices.listReported(), selector);
      if (selected.length === 0)
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          'a rollout needs at least one device: the selector matches none',
        );
      this.#resolveOverlaps(id, new Set(selected), input.actor);
      const plan = planWaves(orderDevices(id, selected), waves);
      const now = new Date();
      const progress: RolloutProgress = {
        phase: 'start',
        waveIndex: 0,
        phaseStartedAtMs: now.getTime(),
        waves: waves.map((w, index) => ({
          index,
          percent: w.percent,
          soakSec: w.soakSec,
          size: plan[index]?.length ?? 0,
          state: 'waiting',
          startedAt: null,
          soakStartedAt: null,
          finishedAt: null,
          gates: [],
        })),
        shadow:
          shadow === null
            ? null
            : { state: 'waiting', startedAt: null, finishedAt: null, gates: [] },
      };
      this.#rollouts.add(
        {
          id,
          modelName: model.name,
          modelVersion: model.version,
          deviceIds: selected,
          state: 'pending',
          createdAt: now.toISOString(),
          createdBy: input.actor,
          spec,
          progress,
          reason: null,
          updatedAt: now.toISOString(),
        },
        plan,
      );
      this.#audit.record(input.actor, 'rollout.created', `rollout:${id}`, {
        model: `${model.name}@${model.version}`,
        devices: selected.length,
        waves: plan.map((p) => p.length),
        selector,
        gates: direct ? null : spec.gates,
        shadow,
      });
    });
    this.#engine.kick();
    await this.#engine.idle();
    return this.status(id);
  }

  /**
   * A rollout's state with per-wave progress and, unless `devices` is false, each
   * device's: for a large fleet that list is most of the answer and of its cost.
   */
  status(id: string): RolloutStatus;
  status(id: string, view: StatusView): RolloutOverview;
  status(id: string, view: StatusView = {}): RolloutOverview {
    const record = this.#rollouts.get(id);
    return this.#statusOf(record, this.#devices.reportedById(), view);
  }

  /** Every rollout with progress, newest first (each device's too, unless `devices` is false). */
  list(view: StatusView = {}): RolloutOverview[] {
    const devices = this.#devices.reportedById();
    return this.#rollouts.list().map((r) => this.#statusOf(r, devices, view));
  }

  /** Holds a rollout: no new wave starts and no gate is evaluated until resumed. */
  async pause(id: string, actor: string): Promise<RolloutStatus> {
    await this.#engine.pause(id, actor);
    return this.status(id);
  }

  /** Continues a paused rollout; a soak that was under way starts again. */
  async resume(id: string, actor: string): Promise<RolloutStatus> {
    await this.#engine.resume(id, actor);
    return this.status(id);
  }

  /** Stops a rollout and sends every device it moved back to what it ran before. */
  async abort(id: string, actor: string): Promise<RolloutStatus> {
    await this.#engine.abort(id, actor);
    return this.status(id);
  }

  /**
   * A device is in one active rollout at a time: an all-at-once rollout is
   * superseded by a newer one (its devices simply get the newer version); a
   * staged one must be aborted or finish first.
   */
  #resolveOverlaps(newId: string, selected: ReadonlySet<string>, actor: string): void {
    for (const other of this.#rollouts.listInStates([...ACTIVE_STATES])) {
      const overlap = other.deviceIds.filter((d) => selected.has(d));
      if (overlap.length === 0) continue;
      if (other.spec === null || other.spec.direct) {
        this.#rollouts.setState(other.id, 'aborted', `superseded by rollout ${newId}`);
        this.#audit.record(actor, 'rollout.superseded', `rollout:${other.id}`, { by: newId });
        continue;
      }
      throw new LinesightError(
        'ERR_CLOUD_CONFLICT',
        `${overlap.length} selected devices (e.g. ${overlap[0]}) are in active rollout ${other.id}; abort it or let it finish first`,
        { details: { rollout: other.id, devices: overlap.slice(0, 20) } },
      );
    }
  }

  #statusOf(
    record: RolloutRecord,
    devices: ReadonlyMap<string, DeviceState>,
    view: StatusView,
  ): RolloutOverview {
    const withDevices = view.devices ?? true;
    const waves = this.#rollouts.waves(record.id);
    const plan = storedPlan(waves, record.deviceIds);
    const progress = record.progress;
    const counts = emptyCounts();
    const waveCounts = plan.map(() => emptyCounts());
    const deviceList: DeviceProgress[] = [];
    // The shadow phase gives every selected device a document; a wave, its own devices.
    const shadowStarted = progress?.shadow != null && progress.shadow.state !== 'waiting';
    const told: string[] = [];
    for (const [w, ids] of plan.entries()) {
      const wave = progress?.waves[w];
      if (shadowStarted || (wave !== undefined && wave.state !== 'waiting')) told.push(...ids);
      const late = new Map((wave?.late ?? []).map((d) => [d.id, d.reason]));
      const sinceMs = wave?.startedAt ? Date.parse(wave.startedAt) : 0;
      for (const id of ids) {
        const d = devices.get(id);
        let state: DeviceRolloutState;
        let error: string | undefined;
        let lateReason: string | undefined;
        if (wave !== undefined && wave.state === 'waiting') state = 'waiting';
        else if (wave?.state === 'rolled_back') state = 'rolled_back';
        else if (runsVersion(d, record.modelName, record.modelVersion)) state = 'done';
        else if ((error = refusal(d, record.modelName, record.modelVersion, sinceMs)) !== undefined)
          state = 'failed';
        else {
          state = 'pending';
          lateReason = late.get(id);
        }
        counts[state]++;
        (waveCounts[w] as Record<DeviceRolloutState, number>)[state]++;
        if (withDevices)
          deviceList.push({
            id,
            wave: w + 1,
            state,
            running: runningOf(d),
            online: d?.online ?? false,
            ...(error === undefined ? {} : { error }),
            ...(lateReason === undefined ? {} : { late: lateReason }),
          });
      }
    }
    return {
      id: record.id,
      modelName: record.modelName,
      modelVersion: record.modelVersion,
      deviceIds: record.deviceIds,
      state: record.state,
      createdAt: record.createdAt,
      createdBy: record.createdBy,
      spec: record.spec,
      reason: record.reason,
      updatedAt: record.updatedAt,
      waves: (progress?.waves ?? []).map((w, i) => ({
        ...w,
        counts: waveCounts[i] ?? emptyCounts(),
      })),
      shadow: progress?.shadow ?? null,
      ...(withDevices ? { devices: deviceList } : {}),
      counts,
      publish: {
        toPublish: told.length,
        published: told.length - (this.#desired?.countPending(told) ?? 0),
      },
    };
  }
}
