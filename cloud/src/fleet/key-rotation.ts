import type { ModelAssignment } from '@linesight/protocol';
import type { ModelService } from '../models/model-service.ts';
import type { ModelRegistry } from '../registry/model-registry.ts';
import type { KeyRing } from '../signing/key-ring.ts';
import type { DesiredStateService } from './desired-state-service.ts';

/**
 * Signing-key rotation without re-provisioning: (1) rotate adds a key, makes
 * it the signer and sends every device the new trust list (signed by a key it
 * already trusts); (2) retire drops an old key, re-signs manifests it had
 * signed, and re-issues every device's desired state with them.
 */
export class KeyRotation {
  readonly #keys: KeyRing;
  readonly #models: ModelRegistry;
  readonly #modelService: ModelService;
  readonly #desired: DesiredStateService;

  constructor(deps: {
    keys: KeyRing;
    models: ModelRegistry;
    modelService: ModelService;
    desired: DesiredStateService;
  }) {
    this.#keys = deps.keys;
    this.#models = deps.models;
    this.#modelService = deps.modelService;
    this.#desired = deps.desired;
  }

  /** Adds and activates a new key; returns its id and how many devices were told. */
  async rotate(): Promise<{ keyId: string; devices: number }> {
    const key = await this.#keys.rotate();
    const devices = await this.#desired.refresh({ force: true });
    return { keyId: key.keyId, devices };
  }

  /** Retires a key; returns how many manifests were re-signed and devices told. */
  async retire(keyId: string): Promise<{ manifests: number; devices: number }> {
    await this.#keys.retire(keyId);
    const manifests = this.#modelService.resignUntrusted();
    const fresh = (a: ModelAssignment | null | undefined) => {
      if (a === null || a === undefined) return a;
      const m = a.signed.manifest;
      return { ...a, signed: this.#models.get(m.name, m.version).signed };
    };
    const devices = await this.#desired.refresh({
      force: true,
      rewrite: (c) => ({
        ...c,
        model: fresh(c.model) ?? null,
        ...(c.shadow !== undefined ? { shadow: fresh(c.shadow) ?? null } : {}),
      }),
    });
    return { manifests, devices };
  }
}
