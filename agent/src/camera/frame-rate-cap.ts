/**
 * Lets frames through at no more than `fps` on average, dropping the rest.
 * A frame up to half a period early still passes, so a source running at
 * exactly the cap with some jitter loses nothing; each frame that passes books
 * a whole period from when it was due or arrived, whichever is later, so the
 * average never exceeds the cap and a pause is not followed by a burst.
 */
export class FrameRateCap {
  readonly #periodMs: number;
  readonly #toleranceMs: number;
  #nextDueMs = Number.NEGATIVE_INFINITY;
  #dropped = 0;

  /** `fps` must be > 0. */
  constructor(fps: number) {
    if (!(Number.isFinite(fps) && fps > 0)) throw new RangeError(`fps must be > 0, got ${fps}`);
    this.#periodMs = 1000 / fps;
    this.#toleranceMs = this.#periodMs / 2;
  }

  /** Frames refused so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** True when a frame arriving at `nowMs` may pass (and books its slot); false counts a drop. */
  admit(nowMs: number): boolean {
    if (nowMs < this.#nextDueMs - this.#toleranceMs) {
      this.#dropped += 1;
      return false;
    }
    this.#nextDueMs = Math.max(this.#nextDueMs, nowMs) + this.#periodMs;
    return true;
  }
}
