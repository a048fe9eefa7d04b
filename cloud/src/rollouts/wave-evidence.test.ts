import { describe, expect, it } from 'vitest';
import type { ReportedState, Telemetry } from '@linesight/protocol';
import type { DeviceState } from './device-progress.ts';
import { sampleOf, type TelemetrySample } from './gates.ts';
import type { FrameSample } from './result-sampler.ts';
import { DEFAULT_GATES, type GateResult } from './rollout-types.ts';
import {
  lateReason,
  refreshSoakStart,
  shadowSamples,
  tallyWave,
  takeSnapshot,
  waveEvidence,
  type Snapshot,
  type WaveEvidenceInput,
} from './wave-evidence.ts';

const target = { name: 'm', version: '2.0.0' };
const NEW = 'm@2.0.0';
const OLD = 'm@1.0.0';
const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

interface TelemetryOptions {
  version?: string | null;
  captured?: number;
  defects?: number;
  unknown?: number;
  errors?: number;
  p99?: number;
  inferenceP99?: number | null;
  shadow?: { name?: string; version: string; scored: number; agreement: number; p99: number };
}

function telemetry(o: TelemetryOptions = {}): Telemetry {
  const version = o.version === undefined ? '1.0.0' : o.version;
  const captured = o.captured ?? 100;
  return {
    model: version === null ? null : { name: 'm', version },
    frames: {
      captured,
      scored: captured,
      unknown: o.unknown ?? 0,
      droppedOverload: 0,
      defects: o.defects ?? 0,
    },
    errors: o.errors ?? 0,
    latencyMs: { p50: 1, p99: o.p99 ?? 10, max: 20 },
    ...(o.inferenceP99 === null
      ? {}
      : {
          stageLatencyMs: {
            inference: { p50: 1, p99: o.inferenceP99 ?? 5, max: 9 },
          },
        }),
    ...(o.shadow === undefined
      ? {}
      : {
          shadow: {
            model: { name: o.shadow.name ?? 'm', version: o.shadow.version },
            scored: o.shadow.scored,
            skipped: 0,
            errors: 0,
            agreementRate: o.shadow.agreement,
            meanAbsScoreDiff: 0,
            latencyMs: { p50: 1, p99: o.shadow.p99, max: 9 },
          },
        }),
  } as unknown as Telemetry;
}

interface DeviceOptions {
  online?: boolean;
  lastSeen?: string | null;
  /** What it reports running; null: no model; undefined: never reported. */
  runs?: string | null;
  phase?: ReportedState['phase'];
  lastError?: { code?: string; version: string; name?: string; atMs: number };
  telemetry?: TelemetryOptions | null;
}

function device(id: string, o: DeviceOptions = {}): DeviceState {
  const reported: ReportedState | null =
    o.runs === undefined
      ? null
      : ({
          phase: o.phase ?? 'running',
          desiredRevision: 3,
          model: o.runs === null ? null : { name: 'm', version: o.runs },
          ...(o.lastError === undefined
            ? {}
            : {
                lastError: {
                  code: o.lastError.code ?? 'ERR_AGENT_MODEL_LOAD',
                  message: 'bad graph',
                  at: iso(o.lastError.atMs),
                  model: { name: o.lastError.name ?? 'm', version: o.lastError.version },
                },
              }),
        } as unknown as ReportedState);
  return {
    id,
    labels: {},
    createdAt: iso(T0),
    online: o.online ?? true,
    lastSeen: o.lastSeen === undefined ? iso(T0) : o.lastSeen,
    reported,
    telemetry: o.telemetry === null ? null : telemetry(o.telemetry),
  };
}

const fleet = (...list: DeviceState[]) => new Map(list.map((d) => [d.id, d]));
const sample = (o: TelemetryOptions): TelemetrySample => sampleOf(telemetry(o));
const gate = (gates: GateResult[], name: string) => gates.find((g) => g.gate === name);

describe('lateReason', () => {
  it('says why a device has not reached the version', () => {
    expect(lateReason(undefined, target)).toBe('unknown device');
    expect(lateReason(device('a', { online: false, lastSeen: iso(T0) }), target)).toBe(
      `offline since ${iso(T0)}`,
    );
    expect(lateReason(device('a', { online: false, lastSeen: null }), target)).toBe(
      'offline (never seen)',
    );
    expect(lateReason(device('a'), target)).toBe('online but has never reported its state');
    expect(lateReason(device('a', { runs: '1.0.0', phase: 'downloading' }), target)).toBe(
      'downloading (reports m@1.0.0, desired revision 3 handled)',
    );
    expect(lateReason(device('a', { runs: null, phase: 'idle' }), target)).toBe(
      'reports no model after handling desired revision 3',
    );
    expect(lateReason(device('a', { runs: '1.0.0' }), target)).toBe(
      'reports m@1.0.0 after handling desired revision 3',
    );
  });

  it("names the device's last error only when it concerns the target version", () => {
    const withError = (version: string, name = 'm') =>
      lateReason(device('a', { runs: '1.0.0', lastError: { version, name, atMs: T0 } }), target);
    expect(withError('2.0.0')).toBe(
      'reports m@1.0.0 after handling desired revision 3; last error ERR_AGENT_MODEL_LOAD: bad graph',
    );
    expect(withError('1.5.0')).toBe('reports m@1.0.0 after handling desired revision 3');
    expect(withError('2.0.0', 'other')).toBe('reports m@1.0.0 after handling desired revision 3');
    // An error about no model in particular (say, a bad desired state).
    const general = device('a', { runs: '1.0.0' });
    (general.reported as ReportedState).lastError = { code: 'ERR_X', message: 'x', at: iso(T0) };
    expect(lateReason(general, target)).toBe('reports m@1.0.0 after handling desired revision 3');
  });
});

describe('tallyWave', () => {
  it('counts done, refused since the wave started, and pending devices with their reasons', () => {
    const devices = fleet(
      device('done', { runs: '2.0.0' }),
      device('refused', { runs: '1.0.0', lastError: { version: '2.0.0', atMs: T0 } }),
      // A refusal from long before the wave started is an old story: still pending.
      device('old-refusal', { runs: '1.0.0', lastError: { version: '2.0.0', atMs: T0 - 60_000 } }),
      device('offline', { online: false, runs: '1.0.0' }),
    );
    const tally = tallyWave(
      ['done', 'refused', 'old-refusal', 'offline', 'unknown'],
      devices,
      target,
      T0,
    );
    expect(tally).toMatchObject({ done: 1, failed: 1, pending: 3, onlinePending: 1 });
    expect(tally.late).toEqual([
      {
        id: 'old-refusal',
        online: true,
        reason:
          'reports m@1.0.0 after handling desired revision 3; last error ERR_AGENT_MODEL_LOAD: bad graph',
      },
      { id: 'offline', online: false, reason: `offline since ${iso(T0)}` },
      { id: 'unknown', online: false, reason: 'unknown device' },
    ]);
  });
});

describe('shadowSamples', () => {
  /** Telemetry with stage latencies but none for inference. */
  const withoutInference = (d: DeviceState): DeviceState => ({
    ...d,
    telemetry: { ...(d.telemetry as Telemetry), stageLatencyMs: {} } as Telemetry,
  });

  it("takes each device's shadow statistics for the target, with its live inference p99", () => {
    const shadow = { version: '2.0.0', scored: 40, agreement: 0.9, p99: 7 };
    const devices = fleet(
      device('a', { telemetry: { shadow, inferenceP99: 4, p99: 11 } }),
      device('b', { telemetry: { shadow, inferenceP99: null, p99: 11 } }),
      withoutInference(device('c', { telemetry: { shadow, p99: 12 } })),
      device('other-version', { telemetry: { shadow: { ...shadow, version: '3.0.0' } } }),
      device('other-name', { telemetry: { shadow: { ...shadow, name: 'x' } } }),
      device('no-shadow', { telemetry: {} }),
      device('no-telemetry', { telemetry: null }),
    );
    expect(shadowSamples([...devices.keys(), 'unknown'], devices, target)).toEqual([
      { scored: 40, agreementRate: 0.9, shadowP99Ms: 7, liveInferenceP99Ms: 4 },
      { scored: 40, agreementRate: 0.9, shadowP99Ms: 7, liveInferenceP99Ms: 11 },
      { scored: 40, agreementRate: 0.9, shadowP99Ms: 7, liveInferenceP99Ms: 12 },
    ]);
  });
});

describe('takeSnapshot and refreshSoakStart', () => {
  it('snapshots every device that has telemetry', () => {
    const snapshot = takeSnapshot(
      fleet(device('a', { telemetry: { captured: 7 } }), device('b', { telemetry: null })),
    );
    expect([...snapshot.keys()]).toEqual(['a']);
    expect(snapshot.get('a')).toMatchObject({ model: OLD, captured: 7 });
  });

  it("starts a wave device's soak window at its first telemetry on the version", () => {
    const soakStart: Snapshot = new Map([
      ['kept', sample({ version: '2.0.0', captured: 5 })],
      ['swapped', sample({ version: '1.0.0', captured: 50 })],
      ['still-old', sample({ version: '1.0.0', captured: 50 })],
      ['silent', sample({ version: '1.0.0', captured: 50 })],
    ]);
    const devices = fleet(
      device('kept', { telemetry: { version: '2.0.0', captured: 30 } }),
      device('swapped', { telemetry: { version: '2.0.0', captured: 60 } }),
      device('still-old', { telemetry: { version: '1.0.0', captured: 70 } }),
      device('silent', { telemetry: null }),
      device('new', { telemetry: { version: '2.0.0', captured: 9 } }),
    );
    refreshSoakStart(soakStart, [...devices.keys(), 'gone'], devices, target);
    // Already on the version: its window keeps its start.
    expect(soakStart.get('kept')?.captured).toBe(5);
    expect(soakStart.get('swapped')).toMatchObject({ model: NEW, captured: 60 });
    expect(soakStart.get('new')).toMatchObject({ model: NEW, captured: 9 });
    // Not on the version yet: no window.
    expect(soakStart.has('still-old')).toBe(false);
    // No telemetry now: whatever was there stays.
    expect(soakStart.get('silent')?.model).toBe(OLD);
  });
});

describe('waveEvidence', () => {
  const limits = { ...DEFAULT_GATES, maxRefusedOrCrashed: 5 };
  const input = (over: Partial<WaveEvidenceInput>): WaveEvidenceInput => ({
    target,
    waves: [
      ['w1', 'w2'],
      ['b1', 'b2'],
    ],
    index: 0,
    devices: new Map(),
    waveStart: new Map(),
    soakStart: new Map(),
    waveStartedAtMs: T0,
    soakStartedAtMs: T0 + 10_000,
    frameSamples: undefined,
    limits,
    minFrames: 10,
    ...over,
  });

  it('counts refusals since the wave started and online devices that crashed back', () => {
    const devices = fleet(
      device('refused', { runs: '1.0.0', lastError: { version: '2.0.0', atMs: T0 } }),
      device('stale', { runs: '1.0.0', lastError: { version: '2.0.0', atMs: T0 - 60_000 } }),
      device('crashed', { runs: '1.0.0' }),
      // Online, not on the version, and never was during the soak: late, not crashed.
      device('not-yet', { runs: '1.0.0' }),
      device('crashed-offline', { online: false, runs: '1.0.0' }),
      device('fine', { runs: '2.0.0' }),
    );
    const onVersion = sample({ version: '2.0.0' });
    const soakStart: Snapshot = new Map([
      ['crashed', onVersion],
      ['crashed-offline', onVersion],
      ['fine', onVersion],
    ]);
    const waves = [[...devices.keys(), 'missing']];
    const evidence = waveEvidence(input({ waves, devices, soakStart }));
    expect(gate(evidence.gates, 'refusedOrCrashed')).toMatchObject({ value: 2, passed: true });
    // A device that refused and also crashed back counts once.
    const both = fleet(device('x', { runs: '1.0.0', lastError: { version: '2.0.0', atMs: T0 } }));
    const once = waveEvidence(
      input({ waves: [['x']], devices: both, soakStart: new Map([['x', onVersion]]) }),
    );
    expect(gate(once.gates, 'refusedOrCrashed')?.value).toBe(1);
  });

  it('counts wave frames only since each device started its window on the version', () => {
    const devices = fleet(
      device('w1', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 160, defects: 8 } }),
      device('w2', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 90, defects: 9 } }),
      device('w3', { runs: '1.0.0', telemetry: { version: '1.0.0', captured: 500 } }),
      // On the version with no window yet (its first telemetry on it comes with the next refresh).
      device('w4', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 700 } }),
      // Crashed back to the old version: its frames on that version are not the wave's.
      device('w5', { runs: '1.0.0', telemetry: { version: '1.0.0', captured: 300 } }),
      device('b1', { telemetry: { version: '1.0.0', captured: 400, defects: 40 } }),
    );
    const soakStart: Snapshot = new Map([
      ['w1', sample({ version: '2.0.0', captured: 100, defects: 5 })],
      // Its window started on the old version: none of its frames count yet.
      ['w2', sample({ version: '1.0.0', captured: 10 })],
      ['w5', sample({ version: '2.0.0', captured: 100 })],
      ['b1', sample({ version: '1.0.0', captured: 100, defects: 10 })],
    ]);
    const evidence = waveEvidence(
      input({ waves: [['w1', 'w2', 'w3', 'w4', 'w5', 'missing'], ['b1']], devices, soakStart }),
    );
    expect(evidence.waveScored).toBe(60);
    expect(evidence.waveSampled).toBeUndefined();
    expect(gate(evidence.gates, 'defectRateChange')?.detail).toMatch(
      /^defect rate 0\.05 in the wave \(60 frames\) vs 0\.1 on the previous version \(300 frames\)/,
    );
  });

  it('takes the baseline from online devices not yet moved that run a model other than the version', () => {
    const onVersion = { version: '2.0.0', captured: 200 };
    const devices = fleet(
      device('done', { runs: '2.0.0', telemetry: { version: '1.0.0', captured: 999 } }),
      device('w1', { runs: '2.0.0', telemetry: onVersion }),
      device('b1', { telemetry: { version: '1.0.0', captured: 50, errors: 5 } }),
      device('b-offline', { online: false, telemetry: { version: '1.0.0', captured: 70 } }),
      device('b-silent', { telemetry: null }),
      device('b-no-model', { telemetry: { version: null, captured: 80 } }),
      device('b-early', { telemetry: { version: '2.0.0', captured: 90 } }),
      device('b2', { telemetry: { version: '1.0.0', captured: 30, errors: 3 } }),
    );
    const soakStart: Snapshot = new Map([
      ['w1', sample({ ...onVersion, captured: 100 })],
      ['b2', sample({ version: '1.0.0', captured: 10, errors: 1 })],
    ]);
    const evidence = waveEvidence(
      input({
        waves: [
          ['done'],
          ['w1'],
          ['b1', 'b-offline', 'b-silent', 'b-no-model', 'b-early', 'b2', 'missing'],
        ],
        index: 1,
        devices,
        soakStart,
      }),
    );
    // b1 counts since its agent started (no soak-start sample), b2 since the soak started.
    expect(gate(evidence.gates, 'defectRateChange')?.detail).toMatch(
      /vs 0 on the previous version \(70 frames\)/,
    );
    expect(gate(evidence.gates, 'errorRate')?.detail).toBe(
      'errors per frame 0 in the wave vs 0.1 on the previous version',
    );
  });

  it("with too small a baseline, compares with the wave devices' own frames before the wave", () => {
    const devices = fleet(
      device('w1', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 150 } }),
      device('w2', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 150 } }),
      device('b1', { telemetry: { version: '1.0.0', captured: 5, defects: 5 } }),
    );
    const soakStart: Snapshot = new Map([
      ['w1', sample({ version: '2.0.0', captured: 50 })],
      ['w2', sample({ version: '2.0.0', captured: 50 })],
    ]);
    const waveStart: Snapshot = new Map([
      ['w1', sample({ version: '1.0.0', captured: 40, defects: 4 })],
      // Already on the version, or on no model, when the wave started: not a baseline.
      ['w2', sample({ version: '2.0.0', captured: 1000, defects: 1000 })],
      ['b1', sample({ version: '1.0.0', captured: 1000, defects: 1000 })],
    ]);
    const evidence = waveEvidence(
      input({ waves: [['w1', 'w2'], ['b1']], devices, soakStart, waveStart }),
    );
    expect(gate(evidence.gates, 'defectRateChange')?.detail).toMatch(
      /^defect rate 0 in the wave \(200 frames\) vs 0\.1 on the previous version \(40 frames\)/,
    );
    // A baseline with enough frames is kept.
    const enough = waveEvidence(
      input({
        waves: [['w1', 'w2'], ['b1']],
        devices,
        soakStart,
        waveStart,
        minFrames: 5,
      }),
    );
    expect(gate(enough.gates, 'defectRateChange')?.detail).toMatch(
      /vs 1 on the previous version \(5 frames\)/,
    );
  });

  it('leaves the telemetry gates unevaluated when neither a baseline nor own history exists', () => {
    const devices = fleet(
      device('w1', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 150 } }),
    );
    const soakStart: Snapshot = new Map([['w1', sample({ version: '2.0.0', captured: 50 })]]);
    const waveStart: Snapshot = new Map([['w1', sample({ version: null, captured: 40 })]]);
    const evidence = waveEvidence(input({ waves: [['w1']], devices, soakStart, waveStart }));
    expect(gate(evidence.gates, 'defectRateChange')).toMatchObject({
      value: null,
      detail: 'not evaluated: no baseline devices on the previous version with 10+ scored frames',
    });
  });

  it('works without soak-window snapshots (a soak that restarted)', () => {
    const devices = fleet(
      device('w1', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 150 } }),
      device('w2', { runs: '1.0.0', telemetry: { version: '1.0.0', captured: 150 } }),
      device('b1', { telemetry: { version: '1.0.0', captured: 5, defects: 5 } }),
    );
    const evidence = waveEvidence(
      input({ waves: [['w1', 'w2'], ['b1']], devices, soakStart: undefined, waveStart: undefined }),
    );
    expect(evidence.waveScored).toBe(0);
    expect(gate(evidence.gates, 'defectRateChange')?.detail).toBe(
      'not evaluated: the wave scored 0 frames during the soak (fewer than 10)',
    );
  });

  it('with no frames asked for, still has no baseline when nobody is left on another version', () => {
    const devices = fleet(
      device('w1', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 150 } }),
    );
    const soakStart: Snapshot = new Map([['w1', sample({ version: '2.0.0', captured: 50 })]]);
    const evidence = waveEvidence(input({ waves: [['w1']], devices, soakStart, minFrames: 0 }));
    expect(gate(evidence.gates, 'errorRate')).toMatchObject({
      value: null,
      detail: 'not evaluated: no baseline devices on the previous version with 0+ scored frames',
    });
  });

  it("judges latency on sampled frames: the wave's on the version since its soak, the baseline's on others", () => {
    const devices = fleet(
      device('w1', { runs: '2.0.0', telemetry: { version: '2.0.0', captured: 150 } }),
      device('b1', { telemetry: { version: '1.0.0', captured: 150 } }),
    );
    const soakStart: Snapshot = new Map([
      ['w1', sample({ version: '2.0.0', captured: 50 })],
      ['b1', sample({ version: '1.0.0', captured: 50 })],
    ]);
    const soakAt = T0 + 10_000;
    const frames = (n: number, model: string | null, atMs: number, inferenceMs: number) =>
      Array.from({ length: n }, (): FrameSample => ({ model, atMs, inferenceMs, totalMs: 0 }));
    const frameSamples = new Map<string, FrameSample[]>([
      [
        'w1',
        [
          ...frames(12, NEW, soakAt, 4),
          // Before the soak window, and before the swap: not the wave's.
          ...frames(30, NEW, soakAt - 1, 400),
          ...frames(5, OLD, soakAt + 5, 2),
        ],
      ],
      ['b1', [...frames(11, OLD, soakAt, 2), ...frames(20, NEW, soakAt, 400)]],
    ]);
    const evidence = waveEvidence(
      input({ waves: [['w1'], ['b1']], devices, soakStart, frameSamples, soakStartedAtMs: soakAt }),
    );
    expect(evidence.waveSampled).toBe(12);
    expect(gate(evidence.gates, 'p99LatencyRatio')?.detail).toMatch(
      /^inference p99 4 ms over 12 wave frames vs 2 ms over 11 frames on the previous version/,
    );
    // Too few baseline frames: the wave devices' own frames before their swap join them.
    const fewer = new Map(frameSamples);
    fewer.set('b1', frames(4, OLD, soakAt, 2));
    const own = waveEvidence(
      input({ waves: [['w1'], ['b1']], devices, soakStart, frameSamples: fewer }),
    );
    expect(gate(own.gates, 'p99LatencyRatio')?.detail).toBe(
      'not evaluated: 12 wave and 9 baseline frames sampled (fewer than 10)',
    );
    // Enough baseline frames: the own ones stay out.
    const enough = waveEvidence(
      input({
        waves: [['w1'], ['b1']],
        devices,
        soakStart,
        frameSamples: fewer,
        minFrames: 4,
      }),
    );
    expect(gate(enough.gates, 'p99LatencyRatio')?.detail).toMatch(/over 4 frames on the previous/);
  });
});
