import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import type { Frame } from '../camera/camera.ts';
import { VerdictGuard } from './verdict-guard.ts';

const BUDGET_MS = 800;

function frame(seq: number): Frame {
  return { seq, capturedAt: new Date(Date.now()), image: Buffer.from([seq]) };
}

function scored(seq: number, verdict: 'good' | 'defect' = 'good'): FrameResult {
  return {
    schema: 'linesight.result/v1',
    deviceId: 'dev-1',
    seq,
    capturedAt: new Date(Date.now()).toISOString(),
    verdict,
    score: verdict === 'good' ? 0.1 : 0.9,
    threshold: 0.5,
    model: { name: 'line', version: '1.0.0', sha256: 'a'.repeat(64) },
    latencyMs: { capture: 0, queue: 0, preprocess: 1, inference: 1, total: 2 },
  };
}

function setup(handoverMax = 100, maxBehind = 1000) {
  const line: FrameResult[] = [];
  const sent: number[] = [];
  const recorded: number[] = [];
  const guard = new VerdictGuard({
    deviceId: 'dev-1',
    budgetMs: BUDGET_MS,
    publish: (r) => line.push(r),
    send: (f) => sent.push(f.seq),
    onCameraError: () => undefined,
    handoverMax,
    maxBehind,
    recordLive: (e) => {
      recorded.push(e.result.seq);
      return true;
    },
    logger: pino({ level: 'silent' }),
  });
  return { guard, line, sent, recorded };
}

const summary = (line: FrameResult[]) =>
  line.map((r) => `${r.seq}:${r.verdict}${r.reason ? `:${r.reason.split(':')[0]}` : ''}`);

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-27T04:00:00Z') });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('VerdictGuard', () => {
  it('answers unknown (agent-restarting) at once while no worker runs, and keeps those for the next worker', () => {
    const { guard, line, sent } = setup();
    guard.frame(frame(0));
    guard.frame(frame(1));
    expect(sent).toEqual([]);
    expect(summary(line)).toEqual(['0:unknown:agent-restarting', '1:unknown:agent-restarting']);
    for (const r of line) {
      expect(r.model).toBeNull();
      expect(r.score).toBeNull();
      expect(r.threshold).toBeNull();
    }
    expect(line[0]!.reason).toBe('agent-restarting: worker starting');
    expect(guard.counters.unknownNoWorker).toBe(2);
    // Never sent to a worker: nobody may have recorded them.
    expect(guard.takeHandover()).toEqual([{ result: line[0] }, { result: line[1] }]);
    expect(guard.takeHandover()).toEqual([]);
  });

  it('writes the worker results in frame order and answers nothing twice', () => {
    const { guard, line, sent } = setup();
    guard.workerUp(42);
    for (let seq = 0; seq < 3; seq++) guard.frame(frame(seq));
    expect(sent).toEqual([0, 1, 2]);
    expect(line).toEqual([]);
    guard.workerResult(scored(0));
    guard.workerResult(scored(1, 'defect'));
    guard.workerResult(scored(2));
    expect(summary(line)).toEqual(['0:good', '1:defect', '2:good']);
    vi.advanceTimersByTime(BUDGET_MS * 3);
    expect(line).toHaveLength(3);
    expect(guard.counters.frames).toEqual({
      captured: 3,
      scored: 3,
      unknown: 0,
      droppedOverload: 0,
      defects: 1,
    });
    expect(guard.takeHandover()).toEqual([]);
  });

  it('answers a frame unknown (agent-timeout) once its budget is up; its late result is counted, not written', () => {
    const { guard, line } = setup();
    guard.workerUp(42);
    guard.frame(frame(0));
    vi.advanceTimersByTime(300);
    guard.frame(frame(1));
    vi.advanceTimersByTime(BUDGET_MS - 300 - 1);
    expect(line).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(summary(line)).toEqual(['0:unknown:agent-timeout']);
    expect(line[0]!.reason).toBe(
      `agent-timeout: no verdict from the scoring process within ${BUDGET_MS} ms`,
    );
    guard.workerResult(scored(0));
    guard.workerResult(scored(1));
    expect(summary(line)).toEqual(['0:unknown:agent-timeout', '1:good']);
    expect(guard.counters.lateResults).toBe(1);
    expect(guard.counters.unknownTimeout).toBe(1);
    // The worker scored and recorded frame 0 itself: nothing to hand over.
    expect(guard.takeHandover()).toEqual([]);
  });

  it('answers every pending frame unknown at once, in order, when the worker exits; the next worker gets them', () => {
    const { guard, line } = setup();
    guard.workerUp(42);
    for (let seq = 0; seq < 4; seq++) guard.frame(frame(seq));
    guard.workerResult(scored(0));
    vi.advanceTimersByTime(BUDGET_MS);
    // 1, 2, 3 answered by timeout; then 4 and 5 sent; the worker dies with 4 and 5 pending.
    guard.frame(frame(4));
    guard.frame(frame(5));
    guard.workerResult(scored(1));
    guard.workerDown('worker 42 exited (SIGKILL)');
    guard.frame(frame(6));
    expect(summary(line)).toEqual([
      '0:good',
      '1:unknown:agent-timeout',
      '2:unknown:agent-timeout',
      '3:unknown:agent-timeout',
      '4:unknown:agent-restarting',
      '5:unknown:agent-restarting',
      '6:unknown:agent-restarting',
    ]);
    expect(line[4]!.reason).toBe('agent-restarting: worker 42 exited (SIGKILL)');
    // Frame 1 came back late (the worker recorded it); 2 and 3 never did. 2-5 were with
    // worker 42, which may have recorded them before it died; 6 never reached a worker.
    expect(
      guard
        .takeHandover()
        .map((e) => [e.result.seq, e.sentToPid])
        .sort((a, b) => a[0]! - b[0]!),
    ).toEqual([
      [2, 42],
      [3, 42],
      [4, 42],
      [5, 42],
      [6, undefined],
    ]);
    // A result of the dead worker arriving after its exit is not written.
    guard.workerResult(scored(5));
    expect(line).toHaveLength(7);
    expect(guard.counters.strayResults).toBe(1);
    // No timer is left for frames that were already answered.
    vi.advanceTimersByTime(BUDGET_MS * 2);
    expect(line).toHaveLength(7);
  });

  it('never writes good for a frame the worker did not score, and one verdict per frame', () => {
    const { guard, line } = setup();
    let seq = 0;
    // A worker that answers some frames, late or never, and dies twice.
    for (let round = 0; round < 3; round++) {
      guard.workerUp(100 + round);
      for (let i = 0; i < 20; i++) {
        const s = seq++;
        guard.frame(frame(s));
        if (s % 3 === 0) guard.workerResult(scored(s));
        vi.advanceTimersByTime(s % 5 === 0 ? BUDGET_MS : 50);
      }
      guard.workerDown(`worker ${100 + round} exited (code 1)`);
      for (let i = 0; i < 5; i++) guard.frame(frame(seq++));
    }
    expect(line.map((r) => r.seq)).toEqual([...Array(seq).keys()]);
    for (const r of line)
      if (r.verdict !== 'unknown') expect(r.seq % 3).toBe(0);
      else expect(r.reason).toMatch(/^agent-(timeout|restarting|lost): /);
  });

  it('answers frames the worker skipped (a later result came first) as unknown before it', () => {
    const { guard, line } = setup();
    guard.workerUp(42);
    for (let seq = 0; seq < 3; seq++) guard.frame(frame(seq));
    guard.workerResult(scored(2));
    expect(summary(line)).toEqual(['0:unknown:agent-lost', '1:unknown:agent-lost', '2:good']);
  });

  it('sends nothing more to a worker maxBehind frames behind: answers at once and records through the live worker', () => {
    const { guard, line, sent, recorded } = setup(100, 3);
    guard.workerUp(42);
    for (let seq = 0; seq < 3; seq++) guard.frame(frame(seq));
    vi.advanceTimersByTime(BUDGET_MS);
    // 0-2 answered by timeout, still held by the (frozen) worker.
    guard.frame(frame(3));
    guard.frame(frame(4));
    expect(sent).toEqual([0, 1, 2]);
    expect(summary(line).slice(3)).toEqual(['3:unknown:agent-timeout', '4:unknown:agent-timeout']);
    expect(line[3]!.reason).toBe('agent-timeout: the scoring process is 3 frames behind');
    expect(guard.counters.unknownBehind).toBe(2);
    // The worker never saw 3 and 4: the live worker records them.
    expect(recorded).toEqual([3, 4]);
    expect(guard.handoverSize).toBe(0);
    // It thaws: its late results come back and frames go to it again.
    guard.workerResult(scored(0));
    guard.workerResult(scored(1));
    guard.frame(frame(5));
    expect(sent).toEqual([0, 1, 2, 5]);
    guard.workerResult(scored(5));
    expect(summary(line).at(-1)).toBe('5:good');
  });

  it('keeps at most handoverMax unknowns, dropping the oldest and counting them', () => {
    const { guard } = setup(3);
    for (let seq = 0; seq < 5; seq++) guard.frame(frame(seq));
    expect(guard.counters.handoverDropped).toBe(2);
    const kept = guard.takeHandover();
    expect(kept.map((e) => e.result.seq)).toEqual([2, 3, 4]);
    guard.giveBack(kept.slice(1));
    guard.frame(frame(5));
    expect(guard.takeHandover().map((e) => e.result.seq)).toEqual([3, 4, 5]);
  });

  it('drains within the budget and answers later frames unknown once closed', async () => {
    const { guard, line } = setup();
    guard.workerUp(42);
    guard.frame(frame(0));
    guard.frame(frame(1));
    let drained = false;
    const drain = guard.drain().then(() => {
      drained = true;
    });
    guard.workerResult(scored(0));
    await Promise.resolve();
    expect(drained).toBe(false);
    vi.advanceTimersByTime(BUDGET_MS);
    await drain;
    expect(summary(line)).toEqual(['0:good', '1:unknown:agent-timeout']);
    guard.close();
    guard.frame(frame(2));
    expect(summary(line)[2]).toBe('2:unknown:agent-stopping');
  });
});
