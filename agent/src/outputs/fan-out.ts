import type { Logger } from 'pino';
import { describeError, type FrameResult } from '@linesight/protocol';
import type { OutputRunner, OutputStats } from './output-runner.ts';

/**
 * Hands each verdict to every output runner. `publish` is synchronous, O(1)
 * per output and never throws: each runner queues the verdict and writes it
 * on its own, so a slow or dead output cannot hold up the frame loop or the
 * other outputs. The verdict time is taken once, here, for every output.
 */
export class OutputFanOut {
  readonly runners: readonly OutputRunner[];
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  constructor(runners: readonly OutputRunner[], logger: Logger) {
    this.runners = runners;
    this.#log = logger;
  }

  /** Starts every output; one that fails to start is logged and retried by its runner on writes. */
  async start(): Promise<void> {
    await Promise.all(
      this.runners.map((r) =>
        r
          .start()
          .catch((err: unknown) =>
            this.#log.warn({ output: r.name, err: describeError(err) }, 'output could not start'),
          ),
      ),
    );
  }

  /** Queues the verdict for every output and returns at once. */
  publish(result: FrameResult, verdictAtMs = performance.now()): void {
    for (const runner of this.runners) {
      try {
        runner.offer({ result, verdictAtMs });
      } catch (err) {
        this.#log.error(
          { output: runner.name, err: describeError(err) },
          'output refused a verdict',
        );
      }
    }
  }

  stats(): OutputStats[] {
    return this.runners.map((r) => r.stats());
  }

  /** Closes every output, collecting every failure. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const settled = await Promise.allSettled(this.runners.map((r) => r.close()));
      const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
      if (errors.length > 0) throw new AggregateError(errors, 'closing outputs failed');
    })();
    return this.#closing;
  }
}
