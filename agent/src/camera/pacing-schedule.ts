/**
 * When each frame of a fixed-rate source is due. Slot `anchorSlot` is due at
 * `anchorMs`, later slots at whole periods after it, so read time and timer
 * lateness do not add up. A source more than a period behind (a slow disk, a
 * stalled loop) takes its next frame at once and keeps the cadence from there
 * rather than bursting to catch up. Times are on one monotonic clock
 * (performance.now()); the schedule keeps no timers, its camera does.
 */
export class PacingSchedule {
  readonly periodMs: number;
  #anchorMs = 0;
  #anchorSlot = 0;

  /** `fps` must be > 0 (each camera checks it first, with its own error). */
  constructor(fps: number) {
    if (!(Number.isFinite(fps) && fps > 0)) throw new RangeError(`fps must be > 0, got ${fps}`);
    this.periodMs = 1000 / fps;
  }

  /** Slot `slot` is due at `atMs`; the ones after it follow at whole periods (a start, a retry). */
  anchor(slot: number, atMs: number): void {
    this.#anchorSlot = slot;
    this.#anchorMs = atMs;
  }

  /** How long to wait at `nowMs` before slot `slot`; re-anchors there when more than a period late. */
  delayMs(slot: number, nowMs: number): number {
    const dueMs = this.#anchorMs + (slot - this.#anchorSlot) * this.periodMs;
    if (nowMs - dueMs > this.periodMs) {
      this.anchor(slot, nowMs);
      return 0;
    }
    return Math.max(0, dueMs - nowMs);
  }
}
