import type { ServerResponse } from 'node:http';
import type { FrameResult } from '@linesight/protocol';
import type { LineOutput, OutputVerdict, WriteOutcome } from './output.ts';

/** Options of the SSE output. */
export interface SseOutputOptions {
  /** Verdicts kept for /verdicts and for clients that reconnect with Last-Event-ID. */
  recentVerdicts: number;
  /** A client whose unsent bytes exceed this is disconnected and counted. */
  maxBufferedBytes: number;
}

/**
 * The agent HTTP endpoint's verdict feed: keeps the last N verdicts and
 * streams each one to every connected Server-Sent Events client (event
 * `verdict`, id = frame sequence number). A client that falls behind by more
 * than `maxBufferedBytes` is disconnected (it can reconnect and resume with
 * Last-Event-ID) rather than let the agent buffer without bound.
 */
export class SseOutput implements LineOutput {
  readonly kind = 'sse';
  readonly #o: SseOutputOptions;
  readonly #recent: FrameResult[] = [];
  readonly #clients = new Set<ServerResponse>();
  /** Clients disconnected for falling behind. */
  slowClientsDropped = 0;
  #closed = false;

  constructor(options: SseOutputOptions) {
    this.#o = options;
  }

  get clients(): number {
    return this.#clients.size;
  }

  start(): void {}

  /** The newest `limit` verdicts, oldest first. */
  recent(limit: number): FrameResult[] {
    return this.#recent.slice(-limit);
  }

  /** Adds an SSE client; sends what it missed after `lastEventId` if that is still kept. */
  attach(res: ServerResponse, lastEventId?: string): void {
    if (this.#closed) {
      res.end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': linesight verdicts\n\n');
    if (lastEventId !== undefined) {
      let from = -1;
      for (let i = this.#recent.length - 1; i >= 0 && from < 0; i--)
        if (String(this.#recent[i]?.seq) === lastEventId) from = i;
      if (from >= 0) for (const r of this.#recent.slice(from + 1)) res.write(frame(r));
    }
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
    res.on('error', () => this.#clients.delete(res));
  }

  async write(batch: readonly OutputVerdict[]): Promise<WriteOutcome> {
    for (const { result } of batch) {
      this.#recent.push(result);
      if (this.#recent.length > this.#o.recentVerdicts) this.#recent.shift();
      const text = frame(result);
      for (const res of this.#clients) {
        if (res.writableLength > this.#o.maxBufferedBytes) {
          this.slowClientsDropped++;
          this.#clients.delete(res);
          res.destroy();
          continue;
        }
        res.write(text);
      }
    }
    return 'written';
  }

  /** Ends every stream. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}

function frame(result: FrameResult): string {
  return `id: ${result.seq}\nevent: verdict\ndata: ${JSON.stringify(result)}\n\n`;
}
