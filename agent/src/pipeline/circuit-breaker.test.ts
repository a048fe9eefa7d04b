import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type RunOutcome } from './circuit-breaker.ts';

/** Records outcomes on one version; returns which of them opened the breaker. */
function feed(breaker: CircuitBreaker, version: string, outcomes: RunOutcome[]): boolean[] {
  return outcomes.map((o) => breaker.record(version, o));
}

describe('CircuitBreaker', () => {
  it('opens on the Nth consecutive watchdog trip, once', () => {
    const breaker = new CircuitBreaker({ tripsToOpen: 3 });
    expect(feed(breaker, 'a', ['watchdog', 'watchdog'])).toEqual([false, false]);
    expect(breaker.isOpen('a')).toBe(false);
    expect(breaker.consecutiveTrips('a')).toBe(2);
    expect(breaker.record('a', 'watchdog')).toBe(true);
    expect(breaker.isOpen('a')).toBe(true);
    // Further outcomes on an open version change nothing and never report opening again.
    expect(feed(breaker, 'a', ['watchdog', 'ok', 'watchdog', 'watchdog'])).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect(breaker.isOpen('a')).toBe(true);
  });

  it('resets the count on a successful run', () => {
    const breaker = new CircuitBreaker({ tripsToOpen: 3 });
    const opened = feed(breaker, 'a', ['watchdog', 'watchdog', 'ok', 'watchdog', 'watchdog']);
    expect(opened).toEqual([false, false, false, false, false]);
    expect(breaker.isOpen('a')).toBe(false);
    expect(breaker.consecutiveTrips('a')).toBe(2);
    expect(breaker.record('a', 'watchdog')).toBe(true);
  });

  it('neither counts nor resets on a run that failed otherwise', () => {
    const breaker = new CircuitBreaker({ tripsToOpen: 3 });
    const opened = feed(breaker, 'a', ['watchdog', 'failed', 'watchdog', 'failed', 'watchdog']);
    expect(opened).toEqual([false, false, false, false, true]);
    expect(breaker.isOpen('a')).toBe(true);
    const other = new CircuitBreaker({ tripsToOpen: 2 });
    expect(feed(other, 'a', ['failed', 'failed', 'failed', 'failed'])).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect(other.isOpen('a')).toBe(false);
  });

  it('counts per version: a new version starts from zero, an open one stays open', () => {
    const breaker = new CircuitBreaker({ tripsToOpen: 2 });
    expect(breaker.record('a', 'watchdog')).toBe(false);
    // The swap to b: a's trip does not count towards b.
    expect(breaker.record('b', 'watchdog')).toBe(false);
    expect(breaker.consecutiveTrips('a')).toBe(0);
    expect(breaker.consecutiveTrips('b')).toBe(1);
    expect(breaker.record('b', 'watchdog')).toBe(true);
    expect([breaker.isOpen('a'), breaker.isOpen('b')]).toEqual([false, true]);
    // Back on a: it starts again from zero; b stays open.
    expect(breaker.record('a', 'watchdog')).toBe(false);
    expect(breaker.record('a', 'ok')).toBe(false);
    expect(breaker.record('a', 'watchdog')).toBe(false);
    expect([breaker.isOpen('a'), breaker.isOpen('b')]).toEqual([false, true]);
  });

  it('opens on the first trip with tripsToOpen 1 and refuses a count below 1', () => {
    expect(new CircuitBreaker({ tripsToOpen: 1 }).record('a', 'watchdog')).toBe(true);
    expect(() => new CircuitBreaker({ tripsToOpen: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ tripsToOpen: 1.5 })).toThrow(RangeError);
  });
});
