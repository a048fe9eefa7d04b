/** Lifecycle states of a rollout. */
export const ROLLOUT_STATES = [
  'pending',
  'shadow',
  'in_progress',
  'paused',
  'completed',
  'rolled_back',
  'aborted',
  'failed',
] as const;
/** A rollout state. */
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** States in which the engine still drives a rollout (paused waits for resume). */
export const ACTIVE_STATES: ReadonlySet<string> = new Set([
  'pending',
  'shadow',
  'in_progress',
  'paused',
]);

/** Which devices a rollout targets; both parts must match, an empty selector means every device. */
export interface DeviceSelector {
  ids?: string[];
  labels?: Record<string, string>;
}

/** One wave: the cumulative share of the selected devices, and how long to watch them before the gates. */
export interface WaveSpec {
  percent: number;
  soakSec: number;
}

/** Health limits a wave must stay within, compared with devices still on the previous version. */
export interface GateLimits {
  /** Largest allowed increase of (unknown + errors) per captured frame over the baseline. */
  maxErrorRate: number;
  /** Largest allowed wave p99 latency / baseline p99 latency. */
  maxP99LatencyRatio: number;
  /** Largest allowed wave median latency / baseline median latency (needs per-frame samples). */
  maxP50LatencyRatio: number;
  /**
   * A latency ratio over its limit fails only when the wave is also this many
   * milliseconds slower: a 2 ms model that takes 4.5 ms for a few frames after
   * loading is noise, not a regression a line would notice.
   */
  minLatencyIncreaseMs: number;
  /** Largest allowed (statistically significant) change of the defect rate, absolute share of frames. */
  maxDefectRateChange: number;
  /** Largest allowed number of wave devices that refused the version or crash-looped on it. */
  maxRefusedOrCrashed: number;
}

/** The shadow phase's agreement limit when a rollout does not set one (docs/rollouts.md). */
export const DEFAULT_SHADOW_MIN_AGREEMENT = 0.9;

/** The default gates: lax enough for noise on small waves, strict enough for real regressions. */
export const DEFAULT_GATES: GateLimits = {
  maxErrorRate: 0.05,
  maxP99LatencyRatio: 2,
  maxP50LatencyRatio: 2,
  minLatencyIncreaseMs: 5,
  maxDefectRateChange: 0.2,
  maxRefusedOrCrashed: 0,
};

/** An optional shadow phase before going live. */
export interface ShadowSpec {
  durationSec: number;
  /** Least share of frames on which the shadow's verdict must equal the live one's. */
  minAgreement: number;
  /** Largest allowed shadow p99 latency / live inference p99 latency. */
  maxLatencyRatio: number;
}

/** Everything a rollout was asked to do, with defaults applied. */
export interface RolloutSpec {
  selector: DeviceSelector;
  waves: WaveSpec[];
  gates: GateLimits;
  shadow: ShadowSpec | null;
  /**
   * The all-at-once form (no waves, gates or shadow asked for): one wave, no
   * gates and no rollback; it ends `completed`, or `failed` when devices refuse.
   */
  direct: boolean;
  /**
   * The deadline of each phase that waits on devices: a wave's online devices
   * must reach the version (or refuse it) within this long, and a soak that
   * lacks frames may run on this long past its soak time.
   */
  waveTimeoutSec: number;
  /**
   * What a missed deadline does: `fail` the wave (a staged wave rolls back; the
   * all-at-once form ends `failed`) or `pause` the rollout for an operator.
   * Absent in rollouts stored before it existed: `fail`.
   */
  onDeadline?: DeadlineAction;
}

/** What a rollout does when a phase misses its deadline. */
export type DeadlineAction = 'fail' | 'pause';

/** The default action on a missed deadline. */
export const DEFAULT_ON_DEADLINE: DeadlineAction = 'fail';

/** A device that had not reached the version when a deadline passed, and why. */
export interface LateDevice {
  id: string;
  online: boolean;
  reason: string;
}

/** A phase deadline that passed. */
export interface MissedDeadline {
  phase: 'applying' | 'soaking';
  /** 1-based wave number. */
  wave: number;
  at: string;
  action: DeadlineAction;
  detail: string;
  late: LateDevice[];
  /** When the rollout this deadline paused was resumed, and its phase got a new deadline. */
  resumedAt?: string;
}

/** One gate's verdict. */
export interface GateResult {
  gate: string;
  passed: boolean;
  /** The measured value (null when there was not enough data). */
  value: number | null;
  limit: number;
  detail: string;
}

/** Where one wave stands. */
export interface WaveProgress {
  index: number;
  percent: number;
  soakSec: number;
  size: number;
  state: 'waiting' | 'applying' | 'soaking' | 'passed' | 'failed' | 'rolled_back';
  startedAt: string | null;
  soakStartedAt: string | null;
  finishedAt: string | null;
  gates: GateResult[];
  /** Devices that had not reached the version when the wave's deadline passed. */
  late?: LateDevice[];
}

/** Where the shadow phase stands. */
export interface ShadowProgress {
  state: 'waiting' | 'running' | 'passed' | 'failed' | 'skipped';
  startedAt: string | null;
  finishedAt: string | null;
  gates: GateResult[];
}

/** The persisted progress of a rollout (the engine's state machine). */
export interface RolloutProgress {
  /** What the engine is doing now. */
  phase: 'start' | 'shadow' | 'applying' | 'soaking' | 'done';
  waveIndex: number;
  /** When the current phase started (ms since epoch): soak and timeouts count from here. */
  phaseStartedAtMs: number;
  waves: WaveProgress[];
  shadow: ShadowProgress | null;
  /** The last phase deadline that passed, if any. */
  deadline?: MissedDeadline;
}
