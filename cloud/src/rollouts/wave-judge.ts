import type { DeviceState } from './device-progress.ts';
import type { GateResult, LateDevice, RolloutSpec } from './rollout-types.ts';
import type { WaveEvidence, WaveTally } from './wave-evidence.ts';

/**
 * What a wave in its applying phase calls for. Pure: the engine makes the
 * change each verdict names.
 */
export type ApplyingVerdict =
  /** Devices are still coming. */
  | { kind: 'wait' }
  /** Direct rollout: every device runs the version. */
  | { kind: 'reached' }
  /** Direct rollout: no device is pending and some refused. */
  | { kind: 'refused'; reason: string }
  /** Too many devices refused or crashed: the wave fails its gates. */
  | { kind: 'fail'; gates: GateResult[] }
  /** The phase's deadline passed first. */
  | { kind: 'missed'; detail: string; late: LateDevice[]; gates: GateResult[] }
  /** Enough devices run the version: the soak starts (offline late devices stay pending). */
  | { kind: 'soak'; late: LateDevice[] };

/** Judges a wave waiting for its devices to reach the version, up to the wave timeout. */
export function judgeApplying(o: {
  spec: RolloutSpec;
  waveSize: number;
  tally: WaveTally;
  elapsedMs: number;
  target: { name: string; version: string };
}): ApplyingVerdict {
  const { spec, waveSize, tally } = o;
  const timedOut = o.elapsedMs >= spec.waveTimeoutSec * 1000;
  const within = `within ${spec.waveTimeoutSec} s`;
  if (spec.direct) {
    // The all-at-once form: no gates and no rollback, as before waves existed.
    if (tally.done === waveSize) return { kind: 'reached' };
    if (tally.pending === 0)
      return {
        kind: 'refused',
        reason: `${tally.failed} of ${waveSize} devices refused ${o.target.name}@${o.target.version}`,
      };
    if (!timedOut) return { kind: 'wait' };
    return {
      kind: 'missed',
      detail: `${tally.pending} of ${waveSize} devices did not reach the version ${within}`,
      late: tally.late,
      gates: [],
    };
  }
  const limit = spec.gates.maxRefusedOrCrashed;
  if (tally.failed > limit) {
    return {
      kind: 'fail',
      gates: [
        {
          gate: 'refusedOrCrashed',
          passed: false,
          value: tally.failed,
          limit,
          detail: `${tally.failed} of ${waveSize} wave devices refused or crashed on the version`,
        },
      ],
    };
  }
  if (tally.onlinePending > 0 && !timedOut) return { kind: 'wait' };
  if (tally.done === 0) {
    if (!timedOut) return { kind: 'wait' };
    const detail = `no device of the wave reached the version ${within}`;
    return {
      kind: 'missed',
      detail,
      late: tally.late,
      gates: [{ gate: 'reached', passed: false, value: 0, limit: 1, detail }],
    };
  }
  if (timedOut && tally.failed + tally.onlinePending > limit) {
    const detail = `${tally.failed} refused and ${tally.onlinePending} online devices did not reach the version ${within}`;
    return {
      kind: 'missed',
      detail,
      late: tally.late.filter((d) => d.online),
      gates: [
        {
          gate: 'refusedOrCrashed',
          passed: false,
          value: tally.failed + tally.onlinePending,
          limit,
          detail,
        },
      ],
    };
  }
  return { kind: 'soak', late: tally.late };
}

/** What a wave whose soak time is over calls for. */
export type SoakVerdict =
  /** Too few frames to judge yet: the soak goes on (up to the wave timeout more). */
  | { kind: 'wait' }
  | { kind: 'missed'; detail: string; late: LateDevice[]; gates: GateResult[] }
  | { kind: 'fail'; gates: GateResult[] }
  | { kind: 'pass'; gates: GateResult[] };

/**
 * Judges a wave after its soak time on the gathered evidence. A soak asked
 * for evidence: a wave with too few frames soaks on (up to the wave timeout
 * more) rather than pass gates it could not evaluate.
 */
export function judgeSoak(o: {
  soakSec: number;
  waveTimeoutSec: number;
  elapsedMs: number;
  evidence: WaveEvidence;
  minFrames: number;
  ids: readonly string[];
  devices: ReadonlyMap<string, DeviceState>;
}): SoakVerdict {
  const { evidence, minFrames } = o;
  const gates = evidence.gates;
  const framesSeen = Math.min(evidence.waveScored, evidence.waveSampled ?? Infinity);
  if (o.soakSec > 0 && framesSeen < minFrames && gates.every((g) => g.passed)) {
    if (o.elapsedMs < (o.soakSec + o.waveTimeoutSec) * 1000) return { kind: 'wait' };
    const detail = `the wave scored ${framesSeen} frames in ${Math.round(o.elapsedMs / 1000)} s of soak, fewer than the ${minFrames} its gates need; is the line running?`;
    const late = o.ids.map((id): LateDevice => {
      const d = o.devices.get(id);
      const scored = d?.telemetry?.frames.scored;
      return {
        id,
        online: d?.online ?? false,
        reason: `${d?.online ? 'online' : 'offline'}; telemetry counts ${scored ?? 'no'} scored frames`,
      };
    });
    return {
      kind: 'missed',
      detail,
      late,
      gates: [
        ...gates,
        { gate: 'soakFrames', passed: false, value: framesSeen, limit: minFrames, detail },
      ],
    };
  }
  return gates.some((g) => !g.passed) ? { kind: 'fail', gates } : { kind: 'pass', gates };
}

/** Late devices named in a reason, a log line or an audit entry (the API lists them all). */
export const LATE_NAMED = 10;

/** The late devices as a reason's tail ('' when none): the first LATE_NAMED, then how many more. */
export function describeLate(late: readonly LateDevice[]): string {
  if (late.length === 0) return '';
  const named = late
    .slice(0, LATE_NAMED)
    .map((d) => `${d.id} (${d.reason})`)
    .join('; ');
  return `; late: ${named}${late.length > LATE_NAMED ? `; and ${late.length - LATE_NAMED} more` : ''}`;
}

/** The failed gates as a reason. */
export function describeGates(failed: readonly GateResult[]): string {
  return failed
    .map((g) => `${g.gate} ${g.value ?? 'n/a'} (limit ${g.limit}): ${g.detail}`)
    .join('; ');
}

/** Baseline devices whose frame results are sampled during a soak. */
const BASELINE_SAMPLE = 20;
/** Wave devices whose frame results are sampled during a soak. */
const WAVE_SAMPLE = 50;

/** The devices whose frame results a wave's soak samples: online ones of the wave, and of the waves after it. */
export function sampledDevices(
  waves: readonly (readonly string[])[],
  index: number,
  devices: ReadonlyMap<string, DeviceState>,
): string[] {
  const online = (id: string) => devices.get(id)?.online === true;
  const wave = (waves[index] ?? []).filter(online).slice(0, WAVE_SAMPLE);
  const baseline = waves
    .slice(index + 1)
    .flat()
    .filter(online)
    .slice(0, BASELINE_SAMPLE);
  return [...wave, ...baseline];
}
