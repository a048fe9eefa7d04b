import { Readable } from 'node:stream';

/** A retained PUBLISH as aedes' persistence stores it. */
export interface RetainedPacket {
  topic: string;
  payload: Buffer;
  [key: string]: unknown;
}

/** The retained-message methods of an aedes persistence (aedes-persistence's in-memory one). */
export interface RetainedPersistence {
  storeRetained(packet: RetainedPacket, cb: (err?: Error | null) => void): void;
  createRetainedStreamCombi(patterns: string[]): Readable;
  createRetainedStream(pattern: string): Readable;
}

/** True when an MQTT topic filter has no wildcard, so it names exactly one topic. */
function isExact(filter: string): boolean {
  return !filter.includes('+') && !filter.includes('#');
}

/**
 * Gives an aedes persistence a map of retained messages by topic, so that a subscription
 * without wildcards finds its retained message in one lookup. aedes' in-memory persistence
 * tests every retained topic against every subscription: each device subscribing to its
 * own desired state scanned the retained messages of the whole fleet (three per device),
 * and at 5,000 devices the connect storm after a start spent most of the cloud's CPU there.
 * Filters with wildcards (the cloud's own `+` subscriptions) still use the full scan.
 * Returns the number of topics indexed, for tests.
 */
export function indexRetained(persistence: RetainedPersistence): { readonly size: number } {
  const byTopic = new Map<string, RetainedPacket>();
  const store = persistence.storeRetained.bind(persistence);
  const scanMany = persistence.createRetainedStreamCombi.bind(persistence);
  const scanOne = persistence.createRetainedStream.bind(persistence);
  const lookup = (filters: string[]) =>
    Readable.from(
      filters.flatMap((filter) => {
        const packet = byTopic.get(filter);
        return packet === undefined ? [] : [packet];
      }),
    );
  persistence.storeRetained = (packet, cb) => {
    // An empty retained payload clears the topic (MQTT 3.1.1 3.3.1.3).
    if (packet.payload.length === 0) byTopic.delete(packet.topic);
    else byTopic.set(packet.topic, { ...packet });
    store(packet, cb);
  };
  persistence.createRetainedStreamCombi = (patterns) =>
    patterns.every(isExact) ? lookup(patterns) : scanMany(patterns);
  persistence.createRetainedStream = (pattern) =>
    isExact(pattern) ? lookup([pattern]) : scanOne(pattern);
  return {
    get size() {
      return byTopic.size;
    },
  };
}
