import { randomUUID } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import type { ModelRegistry } from '../registry/model-registry.ts';
import type { RolloutRecord, RolloutStore } from '../registry/rollout-store.ts';
import type { DesiredStateService } from './desired-state-service.ts';

/** Where one device stands in a rollout. */
export type DeviceRolloutState = 'pending' | 'done' | 'failed';

/** A rollout with live per-device progress. */
export interface RolloutStatus extends RolloutRecord {
  devices: { id: string; state: DeviceRolloutState; running: string | null; error?: string }[];
  counts: Record<DeviceRolloutState, number>;
}

/** The URL path (on the cloud) of a model version's artifact. */
export function artifactPath(name: string, version: string): string {
  return `/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/artifact`;
}

/**
 * Moves devices to a model version by publishing their desired state. This is
 * the all-at-once form; waves, gates and rollback build on it.
 */
export class RolloutService {
  readonly #models: ModelRegistry;
  readonly #devices: DeviceRegistry;
  readonly #rollouts: RolloutStore;
  readonly #desired: DesiredStateService;

  constructor(deps: {
    models: ModelRegistry;
    devices: DeviceRegistry;
    rollouts: RolloutStore;
    desired: DesiredStateService;
  }) {
    this.#models = deps.models;
    this.#devices = deps.devices;
    this.#rollouts = deps.rollouts;
    this.#desired = deps.desired;
  }

  /** Starts a rollout of name@version to the given devices (all devices when omitted). */
  async create(input: {
    model: string;
    version: string;
    deviceIds?: string[];
    actor: string;
  }): Promise<RolloutStatus> {
    const model = this.#models.get(input.model, input.version);
    const deviceIds = input.deviceIds ?? this.#devices.list().map((d) => d.id);
    if (deviceIds.length === 0)
      throw new LinesightError('ERR_CLOUD_BAD_REQUEST', 'a rollout needs at least one device');
    const missing = deviceIds.filter((id) => !this.#devices.has(id));
    if (missing.length > 0) {
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `unknown devices: ${missing.join(', ')}`, {
        details: { missing },
      });
    }
    const record: RolloutRecord = {
      id: randomUUID(),
      modelName: model.name,
      modelVersion: model.version,
      deviceIds: [...new Set(deviceIds)],
      state: 'in_progress',
      createdAt: new Date().toISOString(),
      createdBy: input.actor,
    };
    this.#rollouts.add(record);
    for (const deviceId of record.deviceIds) {
      const current = this.#desired.current(deviceId);
      await this.#desired.set(deviceId, {
        ...current,
        model: { signed: model.signed, artifactUrl: artifactPath(model.name, model.version) },
      });
    }
    return this.status(record.id);
  }

  /** A rollout's state with per-device progress, from the devices' reported states. */
  status(id: string): RolloutStatus {
    const record = this.#rollouts.get(id);
    const counts: Record<DeviceRolloutState, number> = { pending: 0, done: 0, failed: 0 };
    const devices = record.deviceIds.map((deviceId) => {
      const reported = this.#devices.get(deviceId).reported;
      const running = reported?.model ? `${reported.model.name}@${reported.model.version}` : null;
      let state: DeviceRolloutState = 'pending';
      let error: string | undefined;
      if (
        reported?.model?.name === record.modelName &&
        reported.model.version === record.modelVersion
      ) {
        state = 'done';
      } else if (
        reported?.lastError?.model?.name === record.modelName &&
        reported.lastError.model.version === record.modelVersion
      ) {
        state = 'failed';
        error = `${reported.lastError.code}: ${reported.lastError.message}`;
      }
      counts[state]++;
      return { id: deviceId, state, running, ...(error === undefined ? {} : { error }) };
    });
    const state =
      counts.done === devices.length ? 'completed' : counts.pending === 0 ? 'failed' : record.state;
    if (state !== record.state) this.#rollouts.setState(id, state);
    return { ...record, state, devices, counts };
  }

  /** Every rollout with progress. */
  list(): RolloutStatus[] {
    return this.#rollouts.list().map((r) => this.status(r.id));
  }
}
