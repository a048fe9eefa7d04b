import {
  signDocument,
  type DesiredState,
  type EdgeDataSettings,
  type ModelAssignment,
} from '@linesight/protocol';
import type { KeyRing } from './key-ring.ts';

/** What a desired-state document says, before revision, expiry and signature. */
export interface DesiredContent {
  model: ModelAssignment | null;
  shadow?: ModelAssignment | null;
  telemetryIntervalSec?: number;
  /** Telemetry window length and sampling policy for the device's edge data. */
  edgeData?: EdgeDataSettings;
}

/** Builds signed desired-state documents with the current trust list and an expiry. */
export class DesiredIssuer {
  readonly #keys: KeyRing;
  readonly #ttlSec: number;

  constructor(keys: KeyRing, ttlSec: number) {
    this.#keys = keys;
    this.#ttlSec = ttlSec;
  }

  /** How long a document stays valid. */
  get ttlSec(): number {
    return this.#ttlSec;
  }

  /** A signed document for one device at one revision. */
  issue(
    deviceId: string,
    revision: number,
    content: DesiredContent,
    now = new Date(),
  ): DesiredState {
    const key = this.#keys.active;
    return signDocument<DesiredState>(
      {
        schema: 'linesight.desired/v1',
        deviceId,
        revision,
        issuedAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + this.#ttlSec * 1000).toISOString(),
        keyId: key.keyId,
        trust: this.#keys.trustList(),
        model: content.model,
        ...(content.shadow !== undefined ? { shadow: content.shadow } : {}),
        ...(content.telemetryIntervalSec !== undefined
          ? { telemetryIntervalSec: content.telemetryIntervalSec }
          : {}),
        ...(content.edgeData !== undefined ? { edgeData: content.edgeData } : {}),
      },
      key,
    );
  }
}
