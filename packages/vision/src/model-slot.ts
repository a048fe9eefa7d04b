/** Anything a slot can hold: it must release its resources on close(). */
export interface Closeable {
  close(): Promise<void>;
}

/** A hold on the model that was live when acquired; release it when the frame is done. */
export interface ModelLease<M, I> {
  readonly model: M;
  readonly info: I;
  release(): void;
}

interface Entry<M, I> {
  model: M;
  info: I;
  leases: number;
  retired: boolean;
  closed: Promise<void> | undefined;
  onDrained: (() => void) | undefined;
}

/**
 * A hot-swappable model holder. Each frame acquires a lease on the live model;
 * swap() makes a new model live at once (between two acquisitions) and closes
 * the old one only after its last lease is released, so in-flight frames
 * finish on the model they started with and none is dropped.
 */
export class ModelSlot<M extends Closeable, I> {
  #live: Entry<M, I> | undefined;
  #closed = false;
  /** Models retired by swap() or clear() that are still draining or closing. */
  readonly #retiring = new Set<Promise<void>>();

  /** The live model's info, if any. */
  get info(): I | undefined {
    return this.#live?.info;
  }

  /** True when a model is live. */
  get hasModel(): boolean {
    return this.#live !== undefined;
  }

  /** Leases the live model; undefined when there is none. */
  acquire(): ModelLease<M, I> | undefined {
    const entry = this.#live;
    if (entry === undefined) return undefined;
    entry.leases++;
    let released = false;
    return {
      model: entry.model,
      info: entry.info,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        if (entry.retired && entry.leases === 0) entry.onDrained?.();
      },
    };
  }

  /**
   * Makes `model` live. Resolves once the previous model (if any) has drained
   * and closed; the swap itself is immediate.
   */
  async swap(model: M, info: I): Promise<void> {
    if (this.#closed) {
      await model.close();
      throw new Error('model slot is closed');
    }
    const previous = this.#live;
    this.#live = {
      model,
      info,
      leases: 0,
      retired: false,
      closed: undefined,
      onDrained: undefined,
    };
    if (previous !== undefined) await this.#retire(previous);
  }

  /** Retires the live model, if any (waits for its leases); the slot stays usable. */
  async clear(): Promise<void> {
    const live = this.#live;
    this.#live = undefined;
    if (live !== undefined) await this.#retire(live);
  }

  /**
   * Retires the live model (waits for its leases) and refuses further swaps;
   * resolves only once every model this slot retired has closed. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const live = this.#live;
    this.#live = undefined;
    const own = live === undefined ? undefined : this.#retire(live);
    // Earlier retirements report their own errors to whoever swapped; here we only wait for them.
    await Promise.allSettled([...this.#retiring]);
    await own;
  }

  #retire(entry: Entry<M, I>): Promise<void> {
    const closing = retire(entry);
    this.#retiring.add(closing);
    const forget = () => this.#retiring.delete(closing);
    closing.then(forget, forget);
    return closing;
  }
}

function retire<M extends Closeable, I>(entry: Entry<M, I>): Promise<void> {
  entry.closed ??= (async () => {
    entry.retired = true;
    if (entry.leases > 0) await new Promise<void>((resolve) => (entry.onDrained = resolve));
    await entry.model.close();
  })();
  return entry.closed;
}
