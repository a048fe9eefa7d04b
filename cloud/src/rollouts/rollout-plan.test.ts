import { describe, expect, it } from 'vitest';
import {
  orderDevices,
  planWaves,
  selectDevices,
  storedPlan,
  validateWaves,
} from './rollout-plan.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `d-${String(i).padStart(3, '0')}`);
const STANDARD = [1, 10, 50, 100].map((percent) => ({ percent, soakSec: 5 }));

describe('selectDevices', () => {
  const devices: { id: string; labels: Record<string, string> }[] = [
    { id: 'b', labels: { line: '1', site: 'x' } },
    { id: 'a', labels: { line: '2', site: 'x' } },
    { id: 'c', labels: {} },
  ];
  it('selects every device for an empty selector, sorted', () => {
    expect(selectDevices(devices, {})).toEqual(['a', 'b', 'c']);
  });
  it('needs every label to match and the id to be listed', () => {
    expect(selectDevices(devices, { labels: { site: 'x' } })).toEqual(['a', 'b']);
    expect(selectDevices(devices, { labels: { site: 'x', line: '1' } })).toEqual(['b']);
    expect(selectDevices(devices, { ids: ['a', 'c'], labels: { site: 'x' } })).toEqual(['a']);
  });
});

describe('planWaves', () => {
  it('takes cumulative shares: 1/10/50/100% of 50 devices is 1, 4, 20, 25', () => {
    const plan = planWaves(ids(50), STANDARD);
    expect(plan.map((w) => w.length)).toEqual([1, 4, 20, 25]);
    expect(plan.flat()).toEqual(ids(50));
  });
  it('gives every wave at least one device while devices remain', () => {
    expect(planWaves(ids(3), STANDARD).map((w) => w.length)).toEqual([1, 1, 1, 0]);
    expect(planWaves(ids(1), STANDARD).map((w) => w.length)).toEqual([1, 0, 0, 0]);
    expect(planWaves(ids(1000), STANDARD).map((w) => w.length)).toEqual([10, 90, 400, 500]);
  });
  it('is not thrown off by floating point: 10% of 30 devices is 3, not 4', () => {
    expect(
      planWaves(ids(30), [
        { percent: 10, soakSec: 0 },
        { percent: 100, soakSec: 0 },
      ]).map((w) => w.length),
    ).toEqual([3, 27]);
  });
  it('puts each device in exactly one wave', () => {
    const plan = planWaves(ids(7), [
      { percent: 30, soakSec: 0 },
      { percent: 31, soakSec: 0 },
      { percent: 100, soakSec: 0 },
    ]);
    expect(plan.flat().sort()).toEqual(ids(7));
    expect(plan.map((w) => w.length)).toEqual([3, 1, 3]);
  });
});

describe('orderDevices', () => {
  it('is deterministic per rollout and differs between rollouts', () => {
    const a = orderDevices('rollout-1', ids(50));
    expect(orderDevices('rollout-1', [...ids(50)].reverse())).toEqual(a);
    expect(orderDevices('rollout-2', ids(50))).not.toEqual(a);
    expect([...a].sort()).toEqual(ids(50));
  });
});

describe('validateWaves', () => {
  it('accepts growing cumulative percents ending at 100', () => {
    expect(() => validateWaves(STANDARD)).not.toThrow();
  });
  it('reports every problem at once', () => {
    expect(() =>
      validateWaves([
        { percent: 10, soakSec: -1 },
        { percent: 5, soakSec: 0 },
      ]),
    ).toThrow(/soakSec must be at least 0.*must grow.*reach 100/);
    expect(() => validateWaves([])).toThrow(/at least one wave/);
  });
  it('says what is wrong with each wave: a percent outside (0, 100], one that does not grow, a negative soak, a last wave short of 100', () => {
    const problems = [
      'wave 1: percent must be in (0, 100]',
      'wave 2: soakSec must be at least 0',
      'wave 3: percent is cumulative and must grow (40 <= 40)',
      'wave 4: percent must be in (0, 100]',
      'the last wave must reach 100 percent',
    ];
    expect(() =>
      validateWaves([
        { percent: 0, soakSec: 0 },
        { percent: 40, soakSec: -1 },
        { percent: 40, soakSec: 0 },
        { percent: 100.5, soakSec: 0 },
      ]),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_CLOUD_BAD_REQUEST',
        message: `invalid waves: ${problems.join('; ')}`,
        details: { problems },
      }),
    );
    expect(() => validateWaves([])).toThrow(
      expect.objectContaining({ message: 'invalid waves: at least one wave is needed' }),
    );
  });
  it('accepts the edges: one wave of exactly 100 percent, and a soak of 0 s', () => {
    expect(() => validateWaves([{ percent: 100, soakSec: 0 }])).not.toThrow();
    expect(() =>
      validateWaves([
        { percent: 0.5, soakSec: 0 },
        { percent: 100, soakSec: 0 },
      ]),
    ).not.toThrow();
  });
});

describe('storedPlan', () => {
  it('is the stored plan, or one wave of every device for a rollout stored without one', () => {
    expect(storedPlan([['b'], ['a', 'c']], ['a', 'b', 'c'])).toEqual([['b'], ['a', 'c']]);
    expect(storedPlan([], ['a', 'b'])).toEqual([['a', 'b']]);
  });
});
