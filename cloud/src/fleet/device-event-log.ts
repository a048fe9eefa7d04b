import type { Logger } from 'pino';
import type { DeviceEvent } from '@linesight/protocol';

/** Options of {@link DeviceEventLog}. */
export interface DeviceEventLogOptions {
  /** Length of a folding window (default 10 s). */
  windowMs?: number;
  /** Events of one kind written in full per window before the rest are counted (default 5). */
  fullPerWindow?: number;
  /** Device ids named in a folded line (default 5). */
  exampleDevices?: number;
}

interface Folded {
  level: DeviceEvent['level'];
  type: string;
  code: string | undefined;
  full: number;
  folded: number;
  devices: Set<string>;
}

/**
 * Writes device events to the cloud's log at their own level, folding repeats: per window,
 * the first few events of a kind (level, type and code) are written in full, the rest are
 * counted, and when the window ends one line per kind says how many more came from how many
 * devices. A fleet that fails the same way at once (10,000 devices refusing one rollout) then
 * writes a few lines, not one per device: 217,802 such lines in one 10,000-device run filled
 * the cloud's log and cost it CPU it needed to serve the fleet.
 */
export class DeviceEventLog {
  readonly #log: Logger;
  readonly #fullPerWindow: number;
  readonly #exampleDevices: number;
  readonly #windowMs: number;
  readonly #kinds = new Map<string, Folded>();
  readonly #timer: NodeJS.Timeout;

  constructor(log: Logger, options: DeviceEventLogOptions = {}) {
    this.#log = log;
    this.#windowMs = options.windowMs ?? 10_000;
    this.#fullPerWindow = options.fullPerWindow ?? 5;
    this.#exampleDevices = options.exampleDevices ?? 5;
    this.#timer = setInterval(() => this.flush(), this.#windowMs);
    this.#timer.unref();
  }

  /** Writes the event in full, or counts it when its kind was written often enough this window. */
  write(event: DeviceEvent): void {
    const key = `${event.level}|${event.type}|${event.code ?? ''}`;
    let kind = this.#kinds.get(key);
    if (kind === undefined) {
      kind = {
        level: event.level,
        type: event.type,
        code: event.code,
        full: 0,
        folded: 0,
        devices: new Set(),
      };
      this.#kinds.set(key, kind);
    }
    if (kind.full < this.#fullPerWindow) {
      kind.full++;
      // At the event's own level; a `level` field would clash with pino's.
      this.#log[event.level](
        { deviceId: event.deviceId, eventType: event.type, code: event.code, at: event.at },
        `device event: ${event.message}`,
      );
      return;
    }
    kind.folded++;
    kind.devices.add(event.deviceId);
  }

  /** Ends the window: one line per kind with counted events; the next window starts empty. */
  flush(): void {
    for (const kind of this.#kinds.values()) {
      if (kind.folded === 0) continue;
      const examples = [...kind.devices].slice(0, this.#exampleDevices);
      this.#log[kind.level](
        {
          eventType: kind.type,
          code: kind.code,
          folded: kind.folded,
          devices: kind.devices.size,
          exampleDevices: examples,
          windowMs: this.#windowMs,
        },
        `device events folded: ${kind.folded} more ${kind.type}${kind.code === undefined ? '' : ` ${kind.code}`} from ${kind.devices.size} devices (the first ${kind.full} of the window were logged in full)`,
      );
    }
    this.#kinds.clear();
  }

  /** Writes what is counted and stops the window timer; idempotent. */
  close(): void {
    clearInterval(this.#timer);
    this.flush();
  }
}
