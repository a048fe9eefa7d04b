import type { FastifyBaseLogger } from 'fastify';
import type { DeviceAlertLevels } from '../drift/alert-store.ts';
import type { DeviceRecord } from '../registry/device-registry.ts';
import { fleetRow, type FleetRow } from './fleet-view.ts';

/** What a FleetWatch reads: the device registry's list. */
export interface FleetSource {
  list(): DeviceRecord[];
}

/** Options of a FleetWatch. */
export interface FleetWatchOptions {
  devices: FleetSource;
  /** Each device's worst open alert per kind (devices without one are 'ok'); read once per poll. */
  alerts?: () => ReadonlyMap<string, DeviceAlertLevels>;
  /** How often the registry is read while someone watches. */
  pollMs: number;
  logger: Pick<FastifyBaseLogger, 'warn'>;
}

/** Receives the rows that changed since the last poll, and every row. */
export type FleetListener = (changed: FleetRow[], all: FleetRow[]) => void;

/**
 * Turns the device registry into a stream of changed fleet rows: one shared
 * poll for every watcher, run only while someone watches, so a thousand
 * devices cost one registry read a second however many pages are open.
 */
export class FleetWatch {
  readonly #options: FleetWatchOptions;
  readonly #listeners = new Set<FleetListener>();
  #last = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: FleetWatchOptions) {
    this.#options = options;
  }

  /** Every device's row now. */
  snapshot(): FleetRow[] {
    const alerts = this.#options.alerts?.() ?? new Map<string, DeviceAlertLevels>();
    return this.#options.devices.list().map((d) => fleetRow(d, alerts.get(d.id)));
  }

  /** Adds a listener and returns the function that removes it. */
  subscribe(listener: FleetListener): () => void {
    if (this.#closed) return () => {};
    this.#listeners.add(listener);
    if (this.#timer === undefined) {
      // Diff against the registry as it is now, so the first poll sends only changes.
      this.#last = new Map(this.snapshot().map((r) => [r.id, JSON.stringify(r)]));
      this.#timer = setInterval(() => this.poll(), this.#options.pollMs);
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Reads the registry once and tells every listener what changed; runs on the timer. */
  poll(): void {
    let rows: FleetRow[];
    try {
      rows = this.snapshot();
    } catch (err) {
      this.#options.logger.warn({ err }, 'fleet watch could not read the device registry');
      return;
    }
    const next = new Map<string, string>();
    const changed: FleetRow[] = [];
    for (const row of rows) {
      const json = JSON.stringify(row);
      next.set(row.id, json);
      if (this.#last.get(row.id) !== json) changed.push(row);
    }
    this.#last = next;
    if (changed.length === 0) return;
    for (const listener of this.#listeners) {
      try {
        listener(changed, rows);
      } catch (err) {
        this.#options.logger.warn({ err }, 'fleet watch listener failed');
      }
    }
  }

  /** Stops polling and drops every listener; idempotent. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#stop();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
