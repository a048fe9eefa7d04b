import { describe, expect, it } from 'vitest';
import type { DeviceState } from './device-progress.ts';
import { DEFAULT_GATES, type LateDevice, type RolloutSpec } from './rollout-types.ts';
import type { WaveTally } from './wave-evidence.ts';
import {
  describeGates,
  describeLate,
  judgeApplying,
  judgeSoak,
  sampledDevices,
} from './wave-judge.ts';

const target = { name: 'm', version: '2.0.0' };
const spec = (over: Partial<RolloutSpec> = {}): RolloutSpec => ({
  selector: {},
  waves: [{ percent: 100, soakSec: 10 }],
  gates: { ...DEFAULT_GATES, maxRefusedOrCrashed: 1 },
  shadow: null,
  direct: false,
  waveTimeoutSec: 60,
  ...over,
});
const late = (id: string, online: boolean): LateDevice => ({
  id,
  online,
  reason: 'still on 1.0.0',
});
const tally = (over: Partial<WaveTally>): WaveTally => ({
  done: 0,
  failed: 0,
  pending: 0,
  onlinePending: 0,
  late: [],
  ...over,
});

describe('judgeApplying', () => {
  it('direct: reached when every device runs the version, refused when none is pending', () => {
    const direct = spec({ direct: true });
    expect(
      judgeApplying({ spec: direct, waveSize: 2, tally: tally({ done: 2 }), elapsedMs: 0, target }),
    ).toEqual({ kind: 'reached' });
    expect(
      judgeApplying({
        spec: direct,
        waveSize: 2,
        tally: tally({ done: 1, failed: 1 }),
        elapsedMs: 0,
        target,
      }),
    ).toEqual({ kind: 'refused', reason: '1 of 2 devices refused m@2.0.0' });
  });

  it('direct: waits for pending devices until the timeout, then misses the deadline', () => {
    const direct = spec({ direct: true });
    const t = tally({ done: 1, pending: 1, onlinePending: 1, late: [late('d2', true)] });
    expect(
      judgeApplying({ spec: direct, waveSize: 2, tally: t, elapsedMs: 59_999, target }),
    ).toEqual({ kind: 'wait' });
    expect(
      judgeApplying({ spec: direct, waveSize: 2, tally: t, elapsedMs: 60_000, target }),
    ).toMatchObject({ kind: 'missed', late: [{ id: 'd2' }], gates: [] });
  });

  it('fails the wave as soon as more devices refused than the gate allows', () => {
    const verdict = judgeApplying({
      spec: spec(),
      waveSize: 3,
      tally: tally({ failed: 2, pending: 1, onlinePending: 1 }),
      elapsedMs: 0,
      target,
    });
    expect(verdict).toMatchObject({
      kind: 'fail',
      gates: [{ gate: 'refusedOrCrashed', passed: false, value: 2, limit: 1 }],
    });
  });

  it('soaks once online devices arrived, keeping offline late devices pending', () => {
    const t = tally({ done: 2, pending: 1, late: [late('d3', false)] });
    expect(judgeApplying({ spec: spec(), waveSize: 3, tally: t, elapsedMs: 0, target })).toEqual({
      kind: 'soak',
      late: [late('d3', false)],
    });
  });

  it('misses the deadline when no device reached the version in time', () => {
    const t = tally({ pending: 2, late: [late('d1', false), late('d2', false)] });
    expect(judgeApplying({ spec: spec(), waveSize: 2, tally: t, elapsedMs: 1000, target })).toEqual(
      {
        kind: 'wait',
      },
    );
    expect(
      judgeApplying({ spec: spec(), waveSize: 2, tally: t, elapsedMs: 60_000, target }),
    ).toMatchObject({ kind: 'missed', gates: [{ gate: 'reached', value: 0, limit: 1 }] });
  });

  it('at the timeout counts online stragglers with refusals and names only the online ones', () => {
    const t = tally({
      done: 1,
      failed: 1,
      pending: 2,
      onlinePending: 1,
      late: [late('on', true), late('off', false)],
    });
    expect(
      judgeApplying({ spec: spec(), waveSize: 4, tally: t, elapsedMs: 60_000, target }),
    ).toMatchObject({
      kind: 'missed',
      late: [{ id: 'on' }],
      gates: [{ gate: 'refusedOrCrashed', value: 2, limit: 1 }],
    });
  });
});

describe('judgeSoak', () => {
  const passed = { gate: 'errorRate', passed: true, value: 0, limit: 0.05, detail: '' };
  const failed = { ...passed, passed: false, value: 0.5 };
  const devices = new Map<string, DeviceState>([
    ['d1', { online: true, telemetry: { frames: { scored: 3 } } } as unknown as DeviceState],
  ]);
  const base = {
    soakSec: 10,
    waveTimeoutSec: 60,
    minFrames: 10,
    ids: ['d1'],
    devices,
  };

  it('soaks on while too few frames were scored, then misses the deadline naming each device', () => {
    const evidence = { gates: [passed], waveScored: 3, waveSampled: undefined };
    expect(judgeSoak({ ...base, elapsedMs: 69_999, evidence })).toEqual({ kind: 'wait' });
    const verdict = judgeSoak({ ...base, elapsedMs: 70_000, evidence });
    expect(verdict).toMatchObject({
      kind: 'missed',
      late: [{ id: 'd1', online: true, reason: 'online; telemetry counts 3 scored frames' }],
      gates: [passed, { gate: 'soakFrames', passed: false, value: 3, limit: 10 }],
    });
  });

  it('counts the fewer of scored and sampled frames', () => {
    const evidence = { gates: [passed], waveScored: 50, waveSampled: 4 };
    expect(judgeSoak({ ...base, elapsedMs: 10_000, evidence })).toEqual({ kind: 'wait' });
  });

  it('passes or fails on the gates once there are frames enough (or no soak was asked)', () => {
    const enough = { waveScored: 50, waveSampled: 50 };
    expect(
      judgeSoak({ ...base, elapsedMs: 10_000, evidence: { ...enough, gates: [passed] } }),
    ).toEqual({ kind: 'pass', gates: [passed] });
    expect(
      judgeSoak({ ...base, elapsedMs: 10_000, evidence: { ...enough, gates: [passed, failed] } }),
    ).toEqual({ kind: 'fail', gates: [passed, failed] });
    expect(
      judgeSoak({
        ...base,
        soakSec: 0,
        elapsedMs: 0,
        evidence: { gates: [passed], waveScored: 0, waveSampled: undefined },
      }),
    ).toEqual({ kind: 'pass', gates: [passed] });
  });
});

describe('describeLate and sampledDevices', () => {
  it('names the first ten late devices and counts the rest', () => {
    expect(describeLate([])).toBe('');
    const many = Array.from({ length: 12 }, (_, i) => late(`d${i}`, false));
    const text = describeLate(many);
    expect(text.startsWith('; late: d0 (still on 1.0.0); d1')).toBe(true);
    expect(text).toContain('d9 (still on 1.0.0); and 2 more');
    expect(text).not.toContain('d10');
  });

  it('samples online devices of the wave and of the waves after it, up to 50 and 20', () => {
    const online = (id: string) => [id, { online: true } as DeviceState] as const;
    const wave = Array.from({ length: 60 }, (_, i) => `w${i}`);
    const later = Array.from({ length: 30 }, (_, i) => `b${i}`);
    const devices = new Map([...wave, ...later].map(online));
    devices.set('w0', { online: false } as DeviceState);
    const ids = sampledDevices([['done'], wave, later], 1, devices);
    expect(ids).toHaveLength(70);
    expect(ids).not.toContain('w0');
    expect(ids).not.toContain('done');
    expect(ids.slice(50)).toEqual(later.slice(0, 20));
  });
});

describe('judgeApplying guards', () => {
  it('waits for online devices still on their way, even when enough devices arrived', () => {
    const t = tally({ done: 1, pending: 1, onlinePending: 1, late: [late('d2', true)] });
    expect(
      judgeApplying({ spec: spec(), waveSize: 2, tally: t, elapsedMs: 59_999, target }),
    ).toEqual({ kind: 'wait' });
  });

  it('soaks at the timeout while refusals and online stragglers stay within the limit', () => {
    // limit 1: one online straggler and no refusal is allowed.
    const t = tally({ done: 1, pending: 1, onlinePending: 1, late: [late('d2', true)] });
    expect(
      judgeApplying({ spec: spec(), waveSize: 2, tally: t, elapsedMs: 60_000, target }),
    ).toEqual({ kind: 'soak', late: [late('d2', true)] });
  });

  it('says in its gates why a wave failed or missed its deadline', () => {
    const fail = judgeApplying({
      spec: spec(),
      waveSize: 3,
      tally: tally({ failed: 2, pending: 1, onlinePending: 1 }),
      elapsedMs: 0,
      target,
    });
    expect(fail).toMatchObject({
      gates: [{ detail: '2 of 3 wave devices refused or crashed on the version' }],
    });
    const none = judgeApplying({
      spec: spec(),
      waveSize: 1,
      tally: tally({ pending: 1, late: [late('d1', false)] }),
      elapsedMs: 60_000,
      target,
    });
    expect(none).toEqual({
      kind: 'missed',
      detail: 'no device of the wave reached the version within 60 s',
      late: [late('d1', false)],
      gates: [
        {
          gate: 'reached',
          passed: false,
          value: 0,
          limit: 1,
          detail: 'no device of the wave reached the version within 60 s',
        },
      ],
    });
    const stragglers = judgeApplying({
      spec: spec(),
      waveSize: 4,
      tally: tally({ done: 1, failed: 1, pending: 2, onlinePending: 1, late: [late('on', true)] }),
      elapsedMs: 60_000,
      target,
    });
    const detail = '1 refused and 1 online devices did not reach the version within 60 s';
    expect(stragglers).toEqual({
      kind: 'missed',
      detail,
      late: [late('on', true)],
      gates: [{ gate: 'refusedOrCrashed', passed: false, value: 2, limit: 1, detail }],
    });
  });
});

describe('judgeSoak guards', () => {
  const passed = { gate: 'errorRate', passed: true, value: 0, limit: 0.05, detail: '' };
  const failed = { ...passed, passed: false, value: 0.5 };
  const base = {
    soakSec: 10,
    waveTimeoutSec: 60,
    minFrames: 10,
    ids: ['d1'],
    devices: new Map<string, DeviceState>(),
  };

  it('judges on exactly the frames the gates need', () => {
    const evidence = { gates: [passed], waveScored: 10, waveSampled: 10 };
    expect(judgeSoak({ ...base, elapsedMs: 10_000, evidence })).toEqual({
      kind: 'pass',
      gates: [passed],
    });
  });

  it('fails at once on a failed gate, without soaking on for more frames', () => {
    const evidence = { gates: [passed, failed], waveScored: 3, waveSampled: undefined };
    expect(judgeSoak({ ...base, elapsedMs: 10_000, evidence })).toEqual({
      kind: 'fail',
      gates: [passed, failed],
    });
  });

  it('names offline and unknown devices when a soak ends with too few frames', () => {
    const devices = new Map<string, DeviceState>([
      ['off', { online: false, telemetry: null } as unknown as DeviceState],
    ]);
    const verdict = judgeSoak({
      ...base,
      ids: ['off', 'gone'],
      devices,
      elapsedMs: 70_400,
      evidence: { gates: [passed], waveScored: 0, waveSampled: undefined },
    });
    expect(verdict).toMatchObject({
      kind: 'missed',
      detail:
        'the wave scored 0 frames in 70 s of soak, fewer than the 10 its gates need; is the line running?',
      late: [
        { id: 'off', online: false, reason: 'offline; telemetry counts no scored frames' },
        { id: 'gone', online: false, reason: 'offline; telemetry counts no scored frames' },
      ],
    });
  });
});

describe('describeLate, describeGates and sampledDevices guards', () => {
  it('names exactly ten late devices without a count of more', () => {
    const ten = Array.from({ length: 10 }, (_, i) => late(`d${i}`, false));
    expect(describeLate(ten)).not.toContain('more');
    expect(describeLate(ten).endsWith('d9 (still on 1.0.0)')).toBe(true);
  });

  it('lists failed gates with their value or n/a', () => {
    expect(
      describeGates([
        { gate: 'errorRate', passed: false, value: 0.5, limit: 0.05, detail: 'many errors' },
        { gate: 'soakFrames', passed: false, value: null, limit: 10, detail: 'no frames' },
      ]),
    ).toBe('errorRate 0.5 (limit 0.05): many errors; soakFrames n/a (limit 10): no frames');
  });

  it('samples no offline or unknown devices of the waves after it', () => {
    const devices = new Map<string, DeviceState>([
      ['w', { online: true } as DeviceState],
      ['b-off', { online: false } as DeviceState],
      ['b-on', { online: true } as DeviceState],
    ]);
    expect(
      sampledDevices(
        [
          ['w', 'gone'],
          ['b-off', 'b-gone', 'b-on'],
        ],
        0,
        devices,
      ),
    ).toEqual(['w', 'b-on']);
  });
});
