import { LinesightError } from '@linesight/protocol';

/**
 * A fixed number of slots for expensive uploads (model registration streams
 * to disk and loads the model); when all are taken a request is refused at
 * once with ERR_CLOUD_BUSY (503) rather than queued, so memory and disk stay bounded.
 */
export class UploadSlots {
  readonly max: number;
  #inUse = 0;
  #refused = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** Takes a slot; returns its release function (idempotent). Throws ERR_CLOUD_BUSY when none is free. */
  acquire(what: string): () => void {
    if (this.#inUse >= this.max) {
      this.#refused++;
      throw new LinesightError(
        'ERR_CLOUD_BUSY',
        `${this.max} ${what} are in progress, the most the cloud accepts at once; retry shortly`,
      );
    }
    this.#inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse--;
    };
  }

  /** Slots taken now and requests refused so far. */
  get stats(): { inUse: number; refused: number } {
    return { inUse: this.#inUse, refused: this.#refused };
  }
}
