import { createHash } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';
import type { DeviceSelector, WaveSpec } from './rollout-types.ts';

/** The ids of the devices a selector matches, sorted; no selector parts means every device. */
export function selectDevices(
  devices: readonly { id: string; labels: Record<string, string> }[],
  selector: DeviceSelector,
): string[] {
  const ids = selector.ids === undefined ? undefined : new Set(selector.ids);
  const labels = Object.entries(selector.labels ?? {});
  return devices
    .filter((d) => ids === undefined || ids.has(d.id))
    .filter((d) => labels.every(([k, v]) => d.labels[k] === v))
    .map((d) => d.id)
    .sort();
}

/**
 * Orders devices by a hash of rollout id and device id: deterministic for a
 * rollout (a restart plans the same waves), different between rollouts (the
 * same device is not always first).
 */
export function orderDevices(rolloutId: string, deviceIds: readonly string[]): string[] {
  const key = (id: string) => createHash('sha256').update(`${rolloutId}\n${id}`).digest('hex');
  return [...deviceIds]
    .map((id) => ({ id, k: key(id) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.id);
}

/** Checks waves: cumulative percents that grow, end at 100, soak times not negative. */
export function validateWaves(waves: readonly WaveSpec[]): void {
  const problems: string[] = [];
  if (waves.length === 0) problems.push('at least one wave is needed');
  let last = 0;
  for (const [i, w] of waves.entries()) {
    if (!(w.percent > 0 && w.percent <= 100))
      problems.push(`wave ${i + 1}: percent must be in (0, 100]`);
    else if (w.percent <= last)
      problems.push(`wave ${i + 1}: percent is cumulative and must grow (${w.percent} <= ${last})`);
    if (!(w.soakSec >= 0)) problems.push(`wave ${i + 1}: soakSec must be at least 0`);
    last = w.percent;
  }
  if (waves.length > 0 && last !== 100) problems.push('the last wave must reach 100 percent');
  if (problems.length > 0)
    throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `invalid waves: ${problems.join('; ')}`, {
      details: { problems },
    });
}

/**
 * Splits ordered devices into waves by cumulative percent: wave i holds the
 * devices from the previous cumulative count up to ceil(percent% of all),
 * at least one new device each, so a wave never stays empty while devices
 * remain. Waves beyond the last device are empty (a fleet smaller than the
 * number of waves).
 */
export function planWaves(ordered: readonly string[], waves: readonly WaveSpec[]): string[][] {
  const total = ordered.length;
  const plan: string[][] = [];
  let taken = 0;
  for (const [i, w] of waves.entries()) {
    const isLast = i === waves.length - 1;
    let upTo = isLast ? total : Math.ceil((w.percent / 100) * total - 1e-9);
    upTo = Math.min(total, Math.max(upTo, taken + 1));
    plan.push(ordered.slice(taken, upTo));
    taken = Math.max(taken, upTo);
  }
  return plan;
}

/** A stored rollout's wave plan; rollouts stored before wave plans are one wave of all their devices. */
export function storedPlan(
  stored: readonly (readonly string[])[],
  deviceIds: readonly string[],
): readonly (readonly string[])[] {
  return stored.length > 0 ? stored : [deviceIds];
}
