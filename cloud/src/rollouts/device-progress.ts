import type { DeviceRecord } from '../registry/device-registry.ts';

/** What rollouts read about a device (not its desired document). */
export type DeviceState = Omit<DeviceRecord, 'desired'>;

/** Where one device stands in a rollout. */
export type DeviceRolloutState = 'waiting' | 'pending' | 'done' | 'failed' | 'rolled_back';

// A failed download is retried by the agent until it works, and a stalled step (a slow
// fsync) goes on when the disk answers: neither is a refusal.
const TRANSIENT_CODES = new Set(['ERR_AGENT_DOWNLOAD', 'ERR_AGENT_STALLED']);
// Device clocks may run a little behind the cloud's.
const CLOCK_SLACK_MS = 5_000;

/** True when the device reports running name@version. */
export function runsVersion(
  device: DeviceState | undefined,
  name: string,
  version: string,
): boolean {
  const model = device?.reported?.model;
  return model?.name === name && model.version === version;
}

/**
 * The error with which a device refused (or crash-looped on) name@version
 * since `sinceMs`, if any; transient download failures do not count.
 */
export function refusal(
  device: DeviceState | undefined,
  name: string,
  version: string,
  sinceMs: number,
): string | undefined {
  const err = device?.reported?.lastError;
  if (err?.model?.name !== name || err.model.version !== version) return undefined;
  if (TRANSIENT_CODES.has(err.code)) return undefined;
  if (Date.parse(err.at) < sinceMs - CLOCK_SLACK_MS) return undefined;
  return `${err.code}: ${err.message}`;
}

/** The version a device reports running, as name@version. */
export function runningOf(device: DeviceState | undefined): string | null {
  const model = device?.reported?.model;
  return model ? `${model.name}@${model.version}` : null;
}
