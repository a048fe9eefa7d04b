import type { DeviceRegistry, ReportedRecord } from '../registry/device-registry.ts';

/**
 * The rollout engine's copy of what the devices report. A tick awaits (publishes, the
 * sampler) while it works through the rollouts, and the registry's own map moves on when
 * anything reads it meanwhile, so a tick works on a copy; copying 10,000 devices four
 * times a second when none of them changed was most of a tick's cost. The copy is made
 * again only when the registry's version moved, and a copy once handed out is never
 * changed: a newer one replaces it.
 */
export class DeviceSnapshot {
  readonly #registry: Pick<DeviceRegistry, 'reportedById' | 'reportedVersion'>;
  #copy: ReadonlyMap<string, ReportedRecord> | undefined;
  #version = 0;

  constructor(registry: Pick<DeviceRegistry, 'reportedById' | 'reportedVersion'>) {
    this.#registry = registry;
  }

  /** The devices' reported state now, by id, in a map nobody changes. */
  current(): ReadonlyMap<string, ReportedRecord> {
    const version = this.#registry.reportedVersion();
    if (this.#copy === undefined || version !== this.#version) {
      this.#copy = new Map(this.#registry.reportedById());
      this.#version = version;
    }
    return this.#copy;
  }
}
