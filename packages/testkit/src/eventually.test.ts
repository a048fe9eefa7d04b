import { describe, expect, it, vi } from 'vitest';
import { eventually } from './eventually.ts';

describe('eventually', () => {
  it('resolves with the first value that is neither undefined nor false', async () => {
    let calls = 0;
    const value = await eventually(
      () => {
        calls++;
        if (calls === 1) throw new Error('not yet');
        return calls >= 3 ? `call ${calls}` : false;
      },
      { intervalMs: 1 },
    );
    expect(value).toBe('call 3');
    expect(calls).toBe(3);
  });

  it('times out naming what it waited for and the last error', async () => {
    await expect(
      eventually(
        () => {
          throw new Error('still down');
        },
        { timeoutMs: 20, intervalMs: 1, what: 'the server' },
      ),
    ).rejects.toThrow(
      /timed out after 20 ms waiting for the server \(last error: Error: still down\)/,
    );
  });

  it('with progress, times out only after the progress value stops changing for the timeout', async () => {
    let step = 0;
    const started = Date.now();
    // Each check advances the work until step 8; the wait then outlasts 8 x 30 ms overall.
    const value = await eventually(
      () => {
        if (step < 8) step++;
        return step === 8 && Date.now() - started > 8 * 30 ? 'done' : undefined;
      },
      { timeoutMs: 30, intervalMs: 40, progress: () => String(step) },
    );
    expect(value).toBe('done');
    await expect(
      eventually(() => undefined, {
        timeoutMs: 20,
        intervalMs: 1,
        what: 'a stuck job',
        progress: () => 'same',
      }),
    ).rejects.toThrow(/timed out after 20 ms without progress waiting for a stuck job/);
  });

  it('with progress, keeps waiting across stalls each shorter than the timeout, however long the whole wait', async () => {
    vi.useFakeTimers();
    try {
      let moves = 0;
      const progress = () => String(moves);
      const waiting = eventually(() => (moves >= 5 ? 'done' : undefined), {
        timeoutMs: 100,
        intervalMs: 10,
        progress,
      });
      // Five moves 90 ms apart: 4.5 timeouts in all, never 100 ms without a move.
      for (let i = 0; i < 5; i++) {
        await vi.advanceTimersByTimeAsync(90);
        moves++;
      }
      await vi.advanceTimersByTimeAsync(10);
      expect(await waiting).toBe('done');
      // The same wait whose work stops moving fails once the timeout has passed.
      const stuck = expect(
        eventually(() => undefined, { timeoutMs: 100, intervalMs: 10, progress }),
      ).rejects.toThrow(/timed out after 100 ms without progress/);
      await vi.advanceTimersByTimeAsync(120);
      await stuck;
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks at least once even with a zero timeout', async () => {
    expect(await eventually(() => 0, { timeoutMs: 0 })).toBe(0);
  });
});
