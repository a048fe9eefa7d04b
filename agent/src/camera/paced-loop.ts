import { PacingSchedule } from './pacing-schedule.ts';

/**
 * Runs a camera's capture step once per slot of a PacingSchedule, one step at
 * a time: the timer for the next slot is set only when the step in flight has
 * settled. stop() clears the timer and waits for a step in flight. The step
 * must not reject (a camera reports its failures to its sink).
 */
export class PacedLoop {
  readonly #pacing: PacingSchedule;
  readonly #step: () => Promise<void>;
  readonly #more: () => boolean;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;
  #slot = 0;

  /** `more` says whether another step should follow (a folder played once is done). */
  constructor(fps: number, step: () => Promise<void>, more: () => boolean = () => true) {
    this.#pacing = new PacingSchedule(fps);
    this.#step = step;
    this.#more = more;
  }

  /** Runs the first step at once, the next ones a period apart; a no-op once stopped. */
  start(): void {
    if (this.#stopped) return;
    this.#pacing.anchor(this.#slot, performance.now());
    this.#scheduleNext();
  }

  /** Moves the next step to `atMs` (performance.now() clock); the cadence resumes from there. */
  delayNextUntil(atMs: number): void {
    this.#pacing.anchor(this.#slot, atMs);
  }

  /** Clears the timer at once and resolves when a step in flight has settled; idempotent. */
  stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#inFlight ?? Promise.resolve();
  }

  #scheduleNext(): void {
    if (this.#stopped || !this.#more()) return;
    this.#timer = setTimeout(
      () => this.#onDue(),
      this.#pacing.delayMs(this.#slot, performance.now()),
    );
  }

  #onDue(): void {
    this.#timer = undefined;
    this.#slot += 1;
    const step = this.#step();
    this.#inFlight = step;
    void step.finally(() => {
      if (this.#inFlight === step) this.#inFlight = undefined;
      this.#scheduleNext();
    });
  }
}
