import type { DesiredState } from '@linesight/protocol';
import pino, { type Logger } from 'pino';
import type { DeviceRegistry } from '../registry/device-registry.ts';
import type { DesiredContent, DesiredIssuer } from '../signing/desired-issuer.ts';
import type { FleetLink } from './fleet-link.ts';
import { DesiredPublishQueue, type DesiredPublishStats } from './desired-publish-queue.ts';
import type { PublishPacer } from './publish-pacer.ts';

/**
 * Desired-state publishes awaiting their PUBACK at once. A rollout wave of 5,000 devices
 * published all at once handed the broker 5,000 messages in one burst; a window keeps the
 * broker's queue short, and waiting for PUBACKs lets the event loop serve devices and HTTP.
 */
const DESIRED_PUBLISH_WINDOW = 64;

/** A desired-state publish without its PUBACK after this long is queued again. */
const DESIRED_PUBLISH_TIMEOUT_MS = 30_000;

/**
 * Owns every device's desired state: issues signed documents with a new
 * revision, stores them, publishes them retained, and re-issues them before
 * they expire or when the trust list changes. Documents of many devices are
 * published in the background (DesiredPublishQueue): close() stops that.
 */
export class DesiredStateService {
  readonly #devices: DeviceRegistry;
  readonly #issuer: DesiredIssuer;
  readonly #link: FleetLink;
  readonly #queue: DesiredPublishQueue;

  constructor(deps: {
    devices: DeviceRegistry;
    issuer: DesiredIssuer;
    link: FleetLink;
    /** Paces the publishes of many devices' documents (setMany, republishAll); none: as fast as PUBACKs come. */
    pacer?: PublishPacer;
    logger?: Logger;
  }) {
    this.#devices = deps.devices;
    this.#issuer = deps.issuer;
    this.#link = deps.link;
    const pacer = deps.pacer;
    this.#queue = new DesiredPublishQueue({
      publish: (doc) => this.#link.publishDesired(doc),
      ...(pacer === undefined ? {} : { pace: () => pacer.take() }),
      latest: (deviceId) =>
        this.#devices.has(deviceId)
          ? (this.#devices.get(deviceId).desired ?? undefined)
          : undefined,
      maxInFlight: DESIRED_PUBLISH_WINDOW,
      publishTimeoutMs: DESIRED_PUBLISH_TIMEOUT_MS,
      logger: deps.logger ?? pino({ level: 'silent' }),
    });
  }

  /** Sets what a device should run and publishes it now; returns the published document. */
  async set(deviceId: string, content: DesiredContent): Promise<DesiredState> {
    const doc = this.#issuer.issue(deviceId, this.#devices.nextRevision(deviceId), content);
    this.#devices.setDesired(doc);
    // An older document still waiting in the background would follow this one: drop it.
    this.#queue.forget(deviceId);
    await this.#link.publishDesired(doc);
    return doc;
  }

  /**
   * Sets many devices' desired state at once: signs each, stores all in one
   * transaction, and queues them for publishing in the background; returns
   * once stored. The queue keeps up to DESIRED_PUBLISH_WINDOW awaiting their
   * PUBACK (all at once would flood the broker) and goes no faster than the
   * pacer allows (desiredPublishRatePerSec: every device told at once comes
   * for its artifact at once), so a wave of 10,000 takes 20 s at 500/s
   * without holding up the caller. `isPending`/`countPending` say how far it is.
   */
  setMany(changes: readonly [string, DesiredContent][]): DesiredState[] {
    const docs = changes.map(([deviceId, content]) =>
      this.#issuer.issue(deviceId, this.#devices.nextRevision(deviceId), content),
    );
    this.#devices.setDesiredMany(docs);
    this.#queue.enqueue(docs);
    return docs;
  }

  /** How many of `deviceIds` have a stored document not yet acknowledged by the broker. */
  countPending(deviceIds: Iterable<string>): number {
    return this.#queue.countPending(deviceIds);
  }

  /** Counts of the background publishes (waiting, in flight, published and failed since start). */
  publishStats(): DesiredPublishStats {
    return this.#queue.stats();
  }

  /** Resolves once every queued document has been published (tests, benchmarks). */
  published(): Promise<void> {
    return this.#queue.idle();
  }

  /** Stops the background publishes; what is left is stored and republished at the next start. */
  close(): Promise<void> {
    return this.#queue.close();
  }

  /**
   * Changes part of many devices' desired state (keeping their other fields),
   * reading every device's current state once; stores them and queues them
   * for publishing as setMany does. `beforePublish` sees the
   * contents before the change and runs before anything is stored or
   * published (a caller records what to roll back to there).
   */
  patchMany(
    changes: readonly [string, Partial<DesiredContent>][],
    beforePublish?: (previous: ReadonlyMap<string, DesiredContent>) => void,
  ): DesiredState[] {
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

  /**
   * Queues every stored document for publishing as it is, in the background:
   * after a restart the broker may have lost them, and a rollout's documents
   * stored before a crash may never have been published.
   */
  republishAll(): void {
    this.#queue.enqueue(this.#devices.allDesired());
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
