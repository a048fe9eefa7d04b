import type { DesiredState } from '@linesight/protocol';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import type { DesiredContent, DesiredIssuer } from '../signing/desired-issuer.ts';
import type { FleetLink } from './fleet-link.ts';
import { publishWindowed } from './publish-window.ts';
import type { PublishPacer } from './publish-pacer.ts';

/**
 * Desired-state publishes awaiting their PUBACK at once. A rollout wave of 5,000 devices
 * published all at once handed the broker 5,000 messages in one burst; a window keeps the
 * broker's queue short, and waiting for PUBACKs lets the event loop serve devices and HTTP.
 */
const DESIRED_PUBLISH_WINDOW = 64;

/**
 * Owns every device's desired state: issues signed documents with a new
 * revision, stores them, publishes them retained, and re-issues them before
 * they expire or when the trust list changes.
 */
export class DesiredStateService {
  readonly #devices: DeviceRegistry;
  readonly #issuer: DesiredIssuer;
  readonly #link: FleetLink;
  readonly #pace: (() => Promise<void>) | undefined;

  constructor(deps: {
    devices: DeviceRegistry;
    issuer: DesiredIssuer;
    link: FleetLink;
    /** Paces the publishes of many devices' documents (setMany, republishAll); none: as fast as PUBACKs come. */
    pacer?: PublishPacer;
  }) {
    this.#devices = deps.devices;
    this.#issuer = deps.issuer;
    this.#link = deps.link;
    const pacer = deps.pacer;
    this.#pace = pacer === undefined ? undefined : () => pacer.take();
  }

  /** Sets what a device should run; returns the published document. */
  async set(deviceId: string, content: DesiredContent): Promise<DesiredState> {
    const doc = this.#issuer.issue(deviceId, this.#devices.nextRevision(deviceId), content);
    this.#devices.setDesired(doc);
    await this.#link.publishDesired(doc);
    return doc;
  }

  /**
   * Sets many devices' desired state at once: signs each, stores all in one
   * transaction, then publishes with up to DESIRED_PUBLISH_WINDOW awaiting their
   * PUBACK (a rollout wave of 1,000 devices would otherwise wait for 1,000
   * sequential commits and PUBACKs, and all at once would flood the broker),
   * and no faster than the pacer allows (desiredPublishRatePerSec): every device
   * told at once comes for its artifact at once.
   */
  async setMany(changes: readonly [string, DesiredContent][]): Promise<DesiredState[]> {
    const docs = changes.map(([deviceId, content]) =>
      this.#issuer.issue(deviceId, this.#devices.nextRevision(deviceId), content),
    );
    this.#devices.setDesiredMany(docs);
    await publishWindowed(
      docs,
      DESIRED_PUBLISH_WINDOW,
      (doc) => this.#link.publishDesired(doc),
      this.#pace,
    );
    return docs;
  }

  /**
   * Changes part of many devices' desired state (keeping their other fields),
   * reading every device's current state once. `beforePublish` sees the
   * contents before the change and runs before anything is stored or
   * published (a caller records what to roll back to there).
   */
  async patchMany(
    changes: readonly [string, Partial<DesiredContent>][],
    beforePublish?: (previous: ReadonlyMap<string, DesiredContent>) => void,
  ): Promise<DesiredState[]> {
    const previous = this.currentMany(changes.map(([deviceId]) => deviceId));
    beforePublish?.(previous);
    return this.setMany(
      changes.map(([deviceId, change]) => [
        deviceId,
        { ...(previous.get(deviceId) ?? { model: null }), ...change },
      ]),
    );
  }

  /** The content of many devices' current desired state, read in one query. */
  currentMany(deviceIds: readonly string[]): Map<string, DesiredContent> {
    const wanted = new Set(deviceIds);
    const result = new Map<string, DesiredContent>();
    for (const doc of this.#devices.allDesired())
      if (wanted.has(doc.deviceId)) result.set(doc.deviceId, contentOf(doc));
    return result;
  }

  /** The content of a device's current desired state, if any. */
  current(deviceId: string): DesiredContent | undefined {
    const doc = this.#devices.get(deviceId).desired;
    return doc === null ? undefined : contentOf(doc);
  }

  /**
   * Re-issues documents that expire within half their lifetime (or all, with
   * `force`, e.g. after a key rotation); returns how many were re-issued.
   */
  async refresh(
    options: {
      force?: boolean;
      now?: Date;
      rewrite?: (content: DesiredContent) => DesiredContent;
    } = {},
  ): Promise<number> {
    const now = options.now ?? new Date();
    const horizonMs = now.getTime() + (this.#issuer.ttlSec * 1000) / 2;
    let count = 0;
    for (const doc of this.#devices.allDesired()) {
      if (!options.force && Date.parse(doc.expiresAt) > horizonMs) continue;
      const content = this.current(doc.deviceId);
      if (content === undefined) continue;
      await this.set(doc.deviceId, options.rewrite ? options.rewrite(content) : content);
      count++;
    }
    return count;
  }

  /** Republishes every stored document as it is (after a restart the broker may have lost them). */
  async republishAll(): Promise<void> {
    await publishWindowed(
      this.#devices.allDesired(),
      DESIRED_PUBLISH_WINDOW,
      (doc) => this.#link.publishDesired(doc),
      this.#pace,
    );
  }
}

function contentOf(doc: DesiredState): DesiredContent {
  return {
    model: doc.model,
    ...(doc.shadow !== undefined ? { shadow: doc.shadow } : {}),
    ...(doc.telemetryIntervalSec !== undefined
      ? { telemetryIntervalSec: doc.telemetryIntervalSec }
      : {}),
    ...(doc.edgeData !== undefined ? { edgeData: doc.edgeData } : {}),
  };
}
