import { describe, expect, it } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import { isScoredGood, measureAvailability, type LineVerdict } from './verdict-availability.ts';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const PERIOD_MS = 100;

function verdict(
  seq: number,
  capturedAtMs: number,
  latencyMs = 20,
  over: Partial<FrameResult> = {},
): LineVerdict {
  return {
    receivedAtMs: capturedAtMs + latencyMs,
    result: {
      schema: 'linesight.result/v1',
      deviceId: 'd',
      seq,
      capturedAt: new Date(capturedAtMs).toISOString(),
      verdict: 'good',
      score: 0.1,
      threshold: 0.5,
      model: { name: 'm', version: '1.0.0', sha256: 'a'.repeat(64) },
      latencyMs: { capture: 0, queue: 0, preprocess: 1, inference: 1, total: 2 },
      ...over,
    } as FrameResult,
  };
}

/** Frames `from..to` of one process, one per period starting at `startMs`. */
function run(from: number, to: number, startMs: number): LineVerdict[] {
  return Array.from({ length: to - from + 1 }, (_, i) =>
    verdict(from + i, startMs + i * PERIOD_MS),
  );
}

const options = (toMs: number) => ({ fps: 10, budgetMs: 1000, fromMs: T0, toMs });

describe('measureAvailability', () => {
  it('counts every frame of an unbroken run as available', () => {
    const a = measureAvailability(run(0, 99, T0), options(T0 + 100 * PERIOD_MS));
    expect(a).toMatchObject({ frames: 100, inBudget: 100, late: 0, processes: 1 });
    expect(a.lostInProcess + a.lostAgentDown + a.lostStalled).toBe(0);
  });

  it('counts sequence gaps, late verdicts and duplicates', () => {
    const list = run(0, 9, T0).filter((v) => v.result.seq !== 4 && v.result.seq !== 5);
    list.push(verdict(3, T0 + 3 * PERIOD_MS));
    list[1] = verdict(1, T0 + PERIOD_MS, 1500);
    const a = measureAvailability(list, options(T0 + 10 * PERIOD_MS));
    expect(a).toMatchObject({ frames: 10, inBudget: 7, late: 1, lostInProcess: 2, duplicates: 1 });
  });

  it('counts the frames a restarted agent never saw as lost while it was down', () => {
    // Frames 0-9, then the process dies for 2 s; the next one starts at seq 0.
    const list = [...run(0, 9, T0), ...run(0, 9, T0 + 3000)];
    const a = measureAvailability(list, options(T0 + 4000));
    expect(a.processes).toBe(2);
    // 0.9 s -> 3.0 s: 20 frame slots between them.
    expect(a.lostAgentDown).toBe(20);
    expect(a.frames).toBe(40);
  });

  it('puts the slots the camera itself missed in their own column, the rest of a stall on the agent', () => {
    // Frames 0-9, a 1 s gap with no sequence gap, frames 10-19: 9 slots not taken.
    const list = [...run(0, 9, T0), ...run(10, 19, T0 + 1900)];
    const stalled = measureAvailability(list, options(T0 + 2900));
    expect(stalled).toMatchObject({ frames: 29, lostStalled: 9, cameraMissed: 0 });
    // The camera's ledger says it missed 4 of them itself (one outside the gap does not count).
    const missed = [1000, 1100, 1200, 1300, 2500].map((ms) => T0 + ms);
    const a = measureAvailability(list, { ...options(T0 + 2900), cameraMissedAtMs: missed });
    expect(a).toMatchObject({ frames: 25, inBudget: 20, lostStalled: 5, cameraMissed: 4 });
  });

  it('flags a good verdict without a score, a model or under the threshold', () => {
    expect(isScoredGood(verdict(0, T0).result)).toBe(true);
    for (const over of [
      { score: null },
      { model: null },
      { score: 0.7 },
      { threshold: null },
      { reason: 'no model loaded' },
    ] as Partial<FrameResult>[])
      expect(isScoredGood(verdict(0, T0, 20, over).result)).toBe(false);
    const a = measureAvailability([verdict(0, T0, 20, { score: null })], options(T0 + PERIOD_MS));
    expect(a.unscoredGood).toBe(1);
  });
});
