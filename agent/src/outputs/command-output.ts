import { execFile } from 'node:child_process';
import { LinesightError } from '@linesight/protocol';
import { fillTemplate, type LineOutput, type OutputVerdict, type WriteOutcome } from './output.ts';
import type { CommandOutputConfig } from './outputs-config.ts';

/**
 * Runs a command (execFile: no shell, arguments passed as they are after
 * placeholder filling) for each verdict in `on`, at most once per
 * `minIntervalMs`; verdicts in between are skipped and counted. A non-zero
 * exit or a timeout (the runner aborts, which kills the process) fails the
 * write, which is retried.
 */
export class CommandOutput implements LineOutput {
  readonly kind = 'command';
  readonly #config: CommandOutputConfig;
  #lastRunAt = Number.NEGATIVE_INFINITY;
  /** Verdicts skipped by the rate limit. */
  rateLimited = 0;

  constructor(config: CommandOutputConfig) {
    this.#config = config;
  }

  start(): void {}

  async write(batch: readonly OutputVerdict[], signal: AbortSignal): Promise<WriteOutcome> {
    const result = batch[0]?.result;
    if (result === undefined || result.verdict === 'good') return 'skipped';
    if (!this.#config.on.includes(result.verdict)) return 'skipped';
    const now = performance.now();
    if (now - this.#lastRunAt < this.#config.minIntervalMs) {
      this.rateLimited++;
      return 'skipped';
    }
    this.#lastRunAt = now;
    const args = this.#config.args.map((a) => fillTemplate(a, result));
    await new Promise<void>((resolve, reject) => {
      execFile(
        this.#config.command,
        args,
        { signal, maxBuffer: 64 * 1024, windowsHide: true },
        (err, _stdout, stderr) => {
          if (err === null) resolve();
          else
            reject(
              new LinesightError(
                'ERR_AGENT_OUTPUT',
                `command ${this.#config.command} failed: ${err.message}${stderr ? `: ${String(stderr).slice(0, 500)}` : ''}`,
                { cause: err },
              ),
            );
        },
      );
    });
    return 'written';
  }

  async close(): Promise<void> {}
}
