import { LinesightError } from '@linesight/protocol';
import type { LineOutput, OutputVerdict, WriteOutcome } from './output.ts';
import type { WebhookOutputConfig } from './outputs-config.ts';

/**
 * POSTs verdicts to an HTTP endpoint as JSON: one result per request, or an
 * array of up to `batchMax` when verdicts queue up. A non-2xx answer or a
 * timeout (the runner aborts the request) fails the write, which is retried.
 */
export class WebhookOutput implements LineOutput {
  readonly kind = 'webhook';
  readonly maxBatch: number;
  readonly #config: WebhookOutputConfig;

  constructor(config: WebhookOutputConfig) {
    this.#config = config;
    this.maxBatch = config.batchMax;
  }

  start(): void {}

  async write(batch: readonly OutputVerdict[], signal: AbortSignal): Promise<WriteOutcome> {
    const body =
      this.#config.batchMax === 1
        ? JSON.stringify(batch[0]?.result)
        : JSON.stringify(batch.map((v) => v.result));
    const response = await fetch(this.#config.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.#config.headers },
      body,
      signal,
    });
    // Read the body so the connection can be reused.
    await response.arrayBuffer();
    if (!response.ok) {
      throw new LinesightError(
        'ERR_AGENT_OUTPUT',
        `webhook answered ${response.status} ${response.statusText}`,
        { details: { status: response.status } },
      );
    }
    return 'written';
  }

  async close(): Promise<void> {}
}
