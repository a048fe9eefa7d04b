import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdleGapTimer } from './idle-gap-timer.ts';

describe('IdleGapTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'performance'],
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs at its tick while no frames arrive', () => {
    let runs = 0;
    const timer = new IdleGapTimer({ intervalMs: 100, run: () => runs++ });
    timer.start();
    vi.advanceTimersByTime(350);
    expect(runs).toBe(3);
    timer.close();
  });

  it('while frames arrive, runs right after the next frame, not at the tick', () => {
    let runs = 0;
    const timer = new IdleGapTimer({ intervalMs: 100, run: () => runs++ });
    timer.start();
    timer.frameHandled();
    vi.advanceTimersByTime(100);
    // The tick came 100 ms after a frame (within 2 x 100 ms): only marked due.
    expect(runs).toBe(0);
    expect(timer.due).toBe(true);
    timer.frameHandled();
    expect(runs).toBe(0);
    vi.advanceTimersByTime(0);
    expect(runs).toBe(1);
    expect(timer.due).toBe(false);
    // Once per tick, however many frames follow.
    for (let i = 0; i < 5; i++) {
      timer.frameHandled();
      vi.advanceTimersByTime(0);
    }
    expect(runs).toBe(1);
    timer.close();
  });

  it('runs at the tick once frames have stopped for idleAfterMs', () => {
    let runs = 0;
    const timer = new IdleGapTimer({ intervalMs: 100, idleAfterMs: 30, run: () => runs++ });
    timer.start();
    vi.advanceTimersByTime(90);
    timer.frameHandled();
    // Tick at 100: the frame was 10 ms ago, within 30 ms: due, waits for a frame.
    vi.advanceTimersByTime(10);
    expect(runs).toBe(0);
    // Tick at 200: no frame for 110 ms: runs at the tick.
    vi.advanceTimersByTime(100);
    expect(runs).toBe(1);
    timer.close();
  });

  it('runAfterFrame runs once after the current frame however often it is asked', () => {
    let runs = 0;
    const timer = new IdleGapTimer({ intervalMs: 10_000, run: () => runs++ });
    timer.runAfterFrame();
    timer.runAfterFrame();
    expect(runs).toBe(0);
    vi.advanceTimersByTime(0);
    expect(runs).toBe(1);
  });

  it('runs nothing after close', () => {
    let runs = 0;
    const timer = new IdleGapTimer({ intervalMs: 100, run: () => runs++ });
    timer.start();
    timer.runAfterFrame();
    timer.close();
    timer.close();
    vi.advanceTimersByTime(500);
    timer.frameHandled();
    vi.advanceTimersByTime(0);
    expect(runs).toBe(0);
  });
});
