import { describe, it, expect } from 'vitest';
import { Prng, deriveSeed, toSeed } from './prng.ts';

function draws(seed: number, n: number): number[] {
  const prng = new Prng(seed);
  return Array.from({ length: n }, () => prng.nextUint32());
}

describe('Prng', () => {
  it('repeats the same stream for the same seed and differs across seeds', () => {
    expect(draws(42, 100)).toEqual(draws(42, 100));
    expect(draws(42, 100)).not.toEqual(draws(43, 100));
    expect(draws(0, 100)).not.toEqual(draws(1, 100));
  });

  it('keeps uniform draws in range with a plausible mean', () => {
    const prng = new Prng(7);
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 20_000; i += 1) {
      const u = prng.uniform(-2, 3);
      min = Math.min(min, u);
      max = Math.max(max, u);
      sum += u;
    }
    expect(min).toBeGreaterThanOrEqual(-2);
    expect(max).toBeLessThan(3);
    expect(sum / 20_000).toBeCloseTo(0.5, 1);
  });

  it.each([
    ['normal', (p: Prng) => p.normal(10, 2)],
    ['fastNormal', (p: Prng) => p.fastNormal(10, 2)],
  ])('draws %s values with the asked mean and standard deviation', (_name, draw) => {
    const prng = new Prng(11);
    const n = 50_000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i += 1) {
      const v = draw(prng);
      sum += v;
      sumSq += v * v;
    }
    const mean = sum / n;
    expect(mean).toBeCloseTo(10, 1);
    expect(Math.sqrt(sumSq / n - mean * mean)).toBeCloseTo(2, 1);
  });

  it('draws integers over the whole inclusive range and nothing outside it', () => {
    const prng = new Prng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i += 1) seen.add(prng.int(-2, 4));
    expect([...seen].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1, 2, 3, 4]);
  });

  it('picks only from the given items and refuses an empty list', () => {
    const prng = new Prng(5);
    for (let i = 0; i < 100; i += 1) expect(['a', 'b']).toContain(prng.pick(['a', 'b']));
    expect(() => prng.pick([])).toThrow(RangeError);
  });
});

describe('deriveSeed', () => {
  it('is a pure function of (seed, index)', () => {
    expect(deriveSeed(1, 5)).toBe(deriveSeed(1, 5));
    expect(deriveSeed(1, 5)).not.toBe(deriveSeed(1, 6));
    expect(deriveSeed(1, 5)).not.toBe(deriveSeed(2, 5));
    expect(deriveSeed(5, 1)).not.toBe(deriveSeed(1, 5));
  });

  it('gives distinct uint32 child seeds across many parents and indices', () => {
    const seen = new Set<number>();
    for (let seed = 0; seed < 20; seed += 1) {
      for (let index = 0; index < 500; index += 1) {
        const child = deriveSeed(seed, index);
        expect(child).toBe(toSeed(child));
        seen.add(child);
      }
    }
    expect(seen.size).toBe(10_000);
  });
});
