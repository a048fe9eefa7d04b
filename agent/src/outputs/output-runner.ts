import type { Logger } from 'pino';
import { Backoff, LinesightError, describeError } from '@linesight/protocol';
import { Histogram } from '../http/histogram.ts';
import { LatencyWindow } from '../pipeline/latency-window.ts';
import type { LineOutput, OutputKind, OutputVerdict } from './output.ts';
import type { OutputPolicy } from './outputs-config.ts';

/** Counters and latency of one output (cumulative since start). */
export interface OutputStats {
  name: string;
  kind: OutputKind;
  /** False from the first failed attempt until the next successful write. */
  up: boolean;
  /** Verdicts the destination took. */
  written: number;
  /** Verdicts the output passed over on purpose (not its verdict kind, rate limit). */
  skipped: number;
  /** Verdicts dropped because the queue was full (see dropPolicy). */
  dropped: number;
  /** Verdicts dropped because they waited longer than maxAgeMs. */
  stale: number;
  /** Failed write attempts (each is retried after a backoff). */
  failures: number;
  /** Times the output went from up to down. */
  outages: number;
  /** Total time spent down, in ms (including the current outage). */
  downMs: number;
  /** Verdicts waiting now. */
  queued: number;
  reconnects: number;
  /** Verdict to written, over the recent writes. */
  latencyMs: { p50: number; p99: number; max: number };
}

/**
 * Runs one output: a bounded queue with a declared drop policy, one write at
 * a time with a per-attempt timeout, and retries with capped exponential
 * backoff and jitter. `offer` never blocks and never throws, so a dead output
 * delays neither the frame loop nor the other outputs; everything it could
 * not write is counted.
 */
export class OutputRunner {
  readonly name: string;
  readonly #output: LineOutput;
  readonly #policy: OutputPolicy;
  readonly #log: Logger;
  readonly #queue: OutputVerdict[] = [];
  readonly #backoff: Backoff;
  readonly #latency = new LatencyWindow(1024);
  readonly histogram = new Histogram();
  #loop: Promise<void> | undefined;
  #scheduled = false;
  #closed = false;
  readonly #abort = new AbortController();
  #wake: (() => void) | undefined;
  #downSince: number | undefined;
  #counts = { written: 0, skipped: 0, dropped: 0, stale: 0, failures: 0, outages: 0, downMs: 0 };
  #closing: Promise<void> | undefined;

  constructor(name: string, output: LineOutput, policy: OutputPolicy, logger: Logger) {
    this.name = name;
    this.#output = output;
    this.#policy = policy;
    this.#log = logger;
    this.#backoff = new Backoff({
      initialMs: policy.retryBackoff.initialMs,
      maxMs: policy.retryBackoff.maxMs,
    });
  }

  get kind(): OutputKind {
    return this.#output.kind;
  }

  /** Starts the output (connecting in the background). */
  async start(): Promise<void> {
    await this.#output.start();
  }

  /** Queues a verdict; returns at once. Applies the drop policy when the queue is full. */
  offer(verdict: OutputVerdict): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#policy.queueMax) {
      this.#counts.dropped++;
      if (this.#policy.dropPolicy === 'drop-newest') return;
      this.#queue.shift();
    }
    this.#queue.push(verdict);
    if (this.#loop === undefined && !this.#scheduled) {
      this.#scheduled = true;
      // The frame path returns first; the write starts on the next turn of the event loop.
      setImmediate(() => {
        this.#scheduled = false;
        if (this.#loop === undefined && !this.#closed) this.#loop = this.#run();
      });
    }
  }

  stats(): OutputStats {
    const now = performance.now();
    return {
      name: this.name,
      kind: this.#output.kind,
      up: this.#downSince === undefined,
      ...this.#counts,
      downMs: Math.round(
        this.#counts.downMs + (this.#downSince === undefined ? 0 : now - this.#downSince),
      ),
      queued: this.#queue.length,
      reconnects: this.#output.reconnects ?? 0,
      latencyMs: this.#latency.summary(),
    };
  }

  /** Stops retrying, waits for the write in progress (bounded by its timeout), closes the output. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#abort.abort();
      this.#wake?.();
      await this.#loop;
      await this.#output.close();
    })();
    return this.#closing;
  }

  async #run(): Promise<void> {
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const batch = this.#take();
        if (batch.length > 0) await this.#deliver(batch);
      }
    } catch (err) {
      // #deliver catches write failures; anything here is a bug, logged rather than lost.
      this.#log.error({ output: this.name, err: describeError(err) }, 'output loop failed');
    } finally {
      this.#loop = undefined;
      if (!this.#closed && this.#queue.length > 0) this.#loop = this.#run();
    }
  }

  /** The next batch, leaving out (and counting) verdicts that waited too long. */
  #take(): OutputVerdict[] {
    const max = this.#output.maxBatch ?? 1;
    const batch: OutputVerdict[] = [];
    while (batch.length < max && this.#queue.length > 0) {
      const next = this.#queue.shift() as OutputVerdict;
      if (this.#isStale(next)) this.#counts.stale++;
      else batch.push(next);
    }
    return batch;
  }

  #isStale(v: OutputVerdict): boolean {
    return this.#policy.maxAgeMs > 0 && performance.now() - v.verdictAtMs > this.#policy.maxAgeMs;
  }

  /** Writes one batch, retrying with backoff until it is written, stale, or the runner closes. */
  async #deliver(initial: OutputVerdict[]): Promise<void> {
    let batch = initial;
    while (!this.#closed) {
      try {
        const outcome = await this.#attempt(batch);
        const now = performance.now();
        if (this.#downSince !== undefined) {
          this.#counts.downMs += now - this.#downSince;
          this.#log.info(
            { output: this.name, downMs: Math.round(now - this.#downSince) },
            'output recovered',
          );
          this.#downSince = undefined;
        }
        this.#backoff.reset();
        if (outcome === 'skipped') {
          this.#counts.skipped += batch.length;
          return;
        }
        this.#counts.written += batch.length;
        for (const v of batch) {
          const ms = now - v.verdictAtMs;
          this.#latency.add(ms);
          this.histogram.observe(ms);
        }
        return;
      } catch (err) {
        if (this.#closed) return;
        this.#counts.failures++;
        if (this.#downSince === undefined) {
          this.#downSince = performance.now();
          this.#counts.outages++;
          this.#log.warn(
            { output: this.name, kind: this.kind, err: describeError(err) },
            'output down; retrying with backoff',
          );
        } else {
          this.#log.debug({ output: this.name, err: describeError(err) }, 'output write failed');
        }
        await this.#sleep(this.#backoff.next());
        const fresh = batch.filter((v) => !this.#isStale(v));
        this.#counts.stale += batch.length - fresh.length;
        batch = fresh;
        if (batch.length === 0) return;
      }
    }
  }

  /** One write, failed when it takes longer than timeoutMs. */
  async #attempt(batch: readonly OutputVerdict[]) {
    const controller = new AbortController();
    const onClose = () => controller.abort();
    this.#abort.signal.addEventListener('abort', onClose);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(
          new LinesightError(
            'ERR_AGENT_OUTPUT',
            `${this.name}: no answer within ${this.#policy.timeoutMs} ms`,
            { details: { output: this.name, timeoutMs: this.#policy.timeoutMs } },
          ),
        );
      }, this.#policy.timeoutMs);
    });
    const write = this.#output.write(batch, controller.signal);
    try {
      return await Promise.race([write, timeout]);
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onClose);
      // A write that lost the race may still reject later; that is already counted.
      write.catch(() => undefined);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
