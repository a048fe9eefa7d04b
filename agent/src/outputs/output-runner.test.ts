import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import { OutputFanOut } from './fan-out.ts';
import type { LineOutput, OutputVerdict, WriteOutcome } from './output.ts';
import { OutputRunner } from './output-runner.ts';
import type { OutputPolicy } from './outputs-config.ts';
import { eventually } from '@linesight/testkit/eventually';

const log = pino({ level: 'silent' });

function result(seq: number, verdict: FrameResult['verdict'] = 'good'): FrameResult {
  return {
    schema: 'linesight.result/v1',
    deviceId: 'line-1',
    seq,
    capturedAt: new Date().toISOString(),
    verdict,
    score: verdict === 'unknown' ? null : 0.1,
    threshold: verdict === 'unknown' ? null : 0.5,
    model: null,
    latencyMs: { capture: 0, queue: 0, preprocess: 0, inference: 0, total: 0 },
  };
}

/** An in-memory output whose health the test switches: up, failing or hanging. */
class FakeOutput implements LineOutput {
  readonly kind = 'webhook';
  readonly maxBatch: number;
  mode: 'up' | 'fail' | 'hang' = 'up';
  written: number[] = [];
  attempts = 0;
  closed = false;

  constructor(maxBatch = 1) {
    this.maxBatch = maxBatch;
  }

  start(): void {}

  write(batch: readonly OutputVerdict[], signal: AbortSignal): Promise<WriteOutcome> {
    this.attempts++;
    if (this.mode === 'fail') return Promise.reject(new Error('refused'));
    if (this.mode === 'hang')
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    this.written.push(...batch.map((v) => v.result.seq));
    return Promise.resolve('written');
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

const policy = (p: Partial<OutputPolicy> = {}): OutputPolicy => ({
  queueMax: 100,
  dropPolicy: 'drop-oldest',
  maxAgeMs: 0,
  timeoutMs: 200,
  retryBackoff: { initialMs: 5, maxMs: 20 },
  ...p,
});

const open: OutputRunner[] = [];
function runner(output: LineOutput, p?: Partial<OutputPolicy>): OutputRunner {
  const r = new OutputRunner('fake', output, policy(p), log);
  open.push(r);
  return r;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

describe('OutputRunner', () => {
  it('writes verdicts in order and measures verdict-to-written latency', async () => {
    const out = new FakeOutput();
    const r = runner(out);
    for (let seq = 0; seq < 20; seq++)
      r.offer({ result: result(seq), verdictAtMs: performance.now() });
    await eventually(() => r.stats().written === 20, { what: '20 written', intervalMs: 5 });
    expect(out.written).toEqual([...Array(20).keys()]);
    const s = r.stats();
    expect(s).toMatchObject({ up: true, dropped: 0, failures: 0, outages: 0, queued: 0 });
    expect(s.latencyMs.max).toBeGreaterThanOrEqual(s.latencyMs.p50);
    expect(r.histogram.count).toBe(20);
  });

  it('offer returns before the write starts', () => {
    const out = new FakeOutput();
    const r = runner(out);
    r.offer({ result: result(1), verdictAtMs: performance.now() });
    expect(out.attempts).toBe(0);
  });

  it('drops the oldest (or refuses the newest) when the queue is full, and counts it', async () => {
    for (const [dropPolicy, expected] of [
      ['drop-oldest', [0, 3, 4, 5]],
      ['drop-newest', [0, 1, 2, 3]],
    ] as const) {
      const out = new FakeOutput();
      out.mode = 'fail';
      const r = runner(out, {
        queueMax: 3,
        dropPolicy,
        retryBackoff: { initialMs: 50, maxMs: 50 },
      });
      r.offer({ result: result(0), verdictAtMs: performance.now() });
      await eventually(() => out.attempts >= 1, { what: 'first attempt', intervalMs: 5 });
      // Seq 0 is being retried; 1..5 wait in a queue of 3.
      for (let seq = 1; seq <= 5; seq++)
        r.offer({ result: result(seq), verdictAtMs: performance.now() });
      expect(r.stats()).toMatchObject({ dropped: 2, queued: 3 });
      out.mode = 'up';
      await eventually(() => r.stats().written === 4, {
        what: 'all kept verdicts written',
        intervalMs: 5,
      });
      expect(out.written).toEqual(expected);
      expect(r.stats().dropped).toBe(2);
    }
  });

  it('retries a failing output with backoff, counts the outage and the failures, and recovers', async () => {
    const out = new FakeOutput();
    out.mode = 'fail';
    const r = runner(out);
    r.offer({ result: result(7), verdictAtMs: performance.now() });
    await eventually(() => out.attempts >= 3, { what: 'three attempts', intervalMs: 5 });
    expect(r.stats()).toMatchObject({ up: false, outages: 1, written: 0 });
    expect(r.stats().failures).toBeGreaterThanOrEqual(2);
    out.mode = 'up';
    await eventually(() => r.stats().written === 1, {
      what: 'written after recovery',
      intervalMs: 5,
    });
    expect(out.written).toEqual([7]);
    expect(r.stats()).toMatchObject({ up: true, outages: 1 });
  });

  it('fails a hanging write after timeoutMs and drops verdicts older than maxAgeMs', async () => {
    const out = new FakeOutput();
    out.mode = 'hang';
    const r = runner(out, { timeoutMs: 20, maxAgeMs: 100 });
    r.offer({ result: result(1), verdictAtMs: performance.now() });
    await eventually(() => r.stats().stale === 1, {
      what: 'the verdict goes stale',
      intervalMs: 5,
    });
    expect(r.stats().failures).toBeGreaterThanOrEqual(1);
    expect(r.stats().written).toBe(0);
    out.mode = 'up';
    r.offer({ result: result(2), verdictAtMs: performance.now() });
    await eventually(() => r.stats().written === 1, {
      what: 'a fresh verdict written',
      intervalMs: 5,
    });
    expect(out.written).toEqual([2]);
  });

  it('hands batches of up to maxBatch to outputs that take them', async () => {
    const out = new FakeOutput(4);
    out.mode = 'fail';
    const r = runner(out, { retryBackoff: { initialMs: 50, maxMs: 50 } });
    for (let seq = 0; seq < 6; seq++)
      r.offer({ result: result(seq), verdictAtMs: performance.now() });
    await eventually(() => out.attempts >= 1, { what: 'an attempt', intervalMs: 5 });
    out.mode = 'up';
    await eventually(() => r.stats().written === 6, { what: 'all written', intervalMs: 5 });
    expect(out.written).toEqual([0, 1, 2, 3, 4, 5]);
    expect(out.attempts).toBeLessThanOrEqual(4);
  });

  it('close stops retrying and closes the output; idempotent', async () => {
    const out = new FakeOutput();
    out.mode = 'fail';
    const r = runner(out, { retryBackoff: { initialMs: 60_000, maxMs: 60_000 } });
    r.offer({ result: result(1), verdictAtMs: performance.now() });
    await eventually(() => out.attempts >= 1, { what: 'an attempt', intervalMs: 5 });
    await Promise.all([r.close(), r.close()]);
    expect(out.closed).toBe(true);
    r.offer({ result: result(2), verdictAtMs: performance.now() });
    expect(r.stats().queued).toBe(0);
  });
});

describe('OutputFanOut', () => {
  it('a dead output does not delay the others, and unknown stays unknown everywhere', async () => {
    const healthy = new FakeOutput();
    const dead = new FakeOutput();
    dead.mode = 'hang';
    const seen: string[] = [];
    const recorder: LineOutput = {
      kind: 'sse',
      start: () => undefined,
      write: async (batch) => {
        seen.push(...batch.map((v) => v.result.verdict));
        return 'written';
      },
      close: async () => undefined,
    };
    const runners = [
      new OutputRunner('healthy', healthy, policy(), log),
      new OutputRunner('dead', dead, policy({ timeoutMs: 60_000, queueMax: 5 }), log),
      new OutputRunner('recorder', recorder, policy(), log),
    ];
    open.push(...runners);
    const fanOut = new OutputFanOut(runners, log);
    await fanOut.start();
    for (let seq = 0; seq < 50; seq++)
      fanOut.publish(result(seq, seq % 5 === 0 ? 'unknown' : 'good'));
    await eventually(() => healthy.written.length === 50 && seen.length === 50, {
      what: 'the healthy outputs have all 50',
      intervalMs: 5,
    });
    expect(healthy.written).toEqual([...Array(50).keys()]);
    expect(seen.filter((v) => v === 'unknown')).toHaveLength(10);
    const [, deadStats] = fanOut.stats();
    // All 50 were offered before its first write began: 5 kept, then one of them in flight.
    expect(deadStats).toMatchObject({ name: 'dead', written: 0, queued: 4, dropped: 45 });
  });
});
