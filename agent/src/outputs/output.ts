import type { FrameResult } from '@linesight/protocol';

/** The kinds of local output. */
export type OutputKind = 'mqtt' | 'modbus' | 'webhook' | 'command' | 'sse';

/** A verdict on its way to an output, with when it was made (performance.now()). */
export interface OutputVerdict {
  result: FrameResult;
  verdictAtMs: number;
}

/** What one write did: wrote the batch, or skipped it on purpose (filter, rate limit). */
export type WriteOutcome = 'written' | 'skipped';

/**
 * One destination of verdicts on the line. `write` is called by the output's
 * runner one batch at a time, never concurrently; it rejects when the
 * destination did not take the batch (the runner retries with backoff) and
 * should stop early when `signal` aborts (the attempt timed out or the agent
 * is closing).
 */
export interface LineOutput {
  readonly kind: OutputKind;
  /** The largest batch `write` accepts (default 1). */
  readonly maxBatch?: number;
  /** Times the output re-established its connection. */
  readonly reconnects?: number;
  /** Begins connecting; must not wait for the destination (the line may be down). */
  start(): void | Promise<void>;
  write(batch: readonly OutputVerdict[], signal: AbortSignal): Promise<WriteOutcome>;
  /** Releases connections and timers; idempotent. */
  close(): Promise<void>;
}

/** Fills `{name}` placeholders of a template from a verdict (unknown names stay as they are). */
export function fillTemplate(template: string, result: FrameResult): string {
  const values: Record<string, string> = {
    deviceId: result.deviceId,
    verdict: result.verdict,
    seq: String(result.seq),
    score: result.score === null ? '' : String(result.score),
  };
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole);
}
