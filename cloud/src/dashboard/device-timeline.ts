import type { EventRecord } from '@linesight/protocol';
import type { AuditEntry } from '../registry/audit-log.ts';
import type { DriftAlert } from '../drift/alert-store.ts';
import type { RolloutRecord } from '../registry/rollout-store.ts';
import type { VersionSpan } from './device-series.ts';

/** What kind of thing happened. */
export type TimelineKind = 'model' | 'event' | 'alert' | 'rollout' | 'audit';

/** One entry of a device's timeline. */
export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  level: 'info' | 'warn' | 'error';
  title: string;
  detail?: string;
  /** The rollout or alert the entry is about, for a link. */
  ref?: { rollout?: string; alert?: number };
}

/** What a device's timeline is built from: everything the cloud stored about it. */
export interface TimelineSources {
  deviceId: string;
  /** The model versions its stored telemetry windows ran, oldest first. */
  versions: readonly VersionSpan[];
  /** Its stored events (edge data). */
  events: readonly EventRecord[];
  alerts: readonly DriftAlert[];
  /** Rollouts that targeted it. */
  rollouts: readonly RolloutRecord[];
  /** Audit entries whose subject is the device. */
  audit: readonly AuditEntry[];
  fromMs: number;
  toMs: number;
  /** At most this many entries: the newest are kept. */
  limit: number;
}

/** A device's timeline. */
export interface DeviceTimeline {
  deviceId: string;
  from: string;
  to: string;
  /** Newest first. */
  entries: TimelineEntry[];
  /** Entries in the range beyond `limit` (the oldest, left out). */
  omitted: number;
}

const ENDED = new Set(['completed', 'rolled_back', 'aborted', 'failed']);

const versionName = (s: { name: string | null; version: string | null }) =>
  s.name === null || s.version === null ? 'no model' : `${s.name} ${s.version}`;

/**
 * Merges what the cloud stored about one device into one timeline, newest
 * first: the model versions it ran (from its telemetry windows), its events,
 * drift and camera alerts opening and resolving, rollouts that targeted it,
 * and the audit log's changes to it (provisioning, credentials, settings).
 */
export function deviceTimeline(s: TimelineSources): DeviceTimeline {
  const entries: TimelineEntry[] = [];
  const inRange = (iso: string | null | undefined): iso is string => {
    if (iso === null || iso === undefined) return false;
    const ms = Date.parse(iso);
    return ms >= s.fromMs && ms < s.toMs;
  };
  let previous: VersionSpan | undefined;
  for (const v of s.versions) {
    if (inRange(v.from))
      entries.push({
        at: v.from,
        kind: 'model',
        level: v.version === null ? 'warn' : 'info',
        title:
          previous === undefined
            ? `Running ${versionName(v)}`
            : `${versionName(previous)} → ${versionName(v)}`,
        detail: `${v.frames} frames in ${v.windows} telemetry windows`,
      });
    previous = v;
  }
  for (const e of s.events)
    if (inRange(e.at))
      entries.push({
        at: e.at,
        kind: 'event',
        level: e.level,
        title: e.type,
        detail: e.code === undefined ? e.message : `${e.code}: ${e.message}`,
      });
  for (const a of s.alerts) {
    const what = `${a.kind} ${a.feature} ${a.statistic}`;
    const model = a.modelName === '' ? '' : ` on ${a.modelName} ${a.modelVersion}`;
    if (inRange(a.openedAt))
      entries.push({
        at: a.openedAt,
        kind: 'alert',
        level: a.level === 'alert' ? 'error' : 'warn',
        title: `${a.level === 'alert' ? 'Alert' : 'Warning'} opened: ${what}`,
        detail: `${a.value.toFixed(3)} over ${a.frames} frames${model}`,
        ref: { alert: a.id },
      });
    if (inRange(a.resolvedAt))
      entries.push({
        at: a.resolvedAt,
        kind: 'alert',
        level: 'info',
        title: `Resolved: ${what}`,
        detail: `peak ${a.peakValue.toFixed(3)}${model}`,
        ref: { alert: a.id },
      });
  }
  for (const r of s.rollouts) {
    const model = `${r.modelName} ${r.modelVersion}`;
    if (inRange(r.createdAt))
      entries.push({
        at: r.createdAt,
        kind: 'rollout',
        level: 'info',
        title: `Rollout of ${model} started`,
        detail: `by ${r.createdBy}, ${r.deviceIds.length} devices`,
        ref: { rollout: r.id },
      });
    if (ENDED.has(r.state) && inRange(r.updatedAt))
      entries.push({
        at: r.updatedAt,
        kind: 'rollout',
        level: r.state === 'completed' ? 'info' : 'warn',
        title: `Rollout of ${model} ${r.state.replace('_', ' ')}`,
        ...(r.reason === null ? {} : { detail: r.reason }),
        ref: { rollout: r.id },
      });
  }
  for (const a of s.audit)
    if (inRange(a.at))
      entries.push({
        at: a.at,
        kind: 'audit',
        level: 'info',
        title: a.action,
        detail: `by ${a.actor}`,
      });
  // Newest first; at equal times the order above (model, event, alert, rollout, audit) stays.
  const ordered = entries
    .map((e, i) => ({ e, i, ms: Date.parse(e.at) }))
    .sort((a, b) => b.ms - a.ms || a.i - b.i)
    .map((x) => x.e);
  return {
    deviceId: s.deviceId,
    from: new Date(s.fromMs).toISOString(),
    to: new Date(s.toMs).toISOString(),
    entries: ordered.slice(0, s.limit),
    omitted: Math.max(0, ordered.length - s.limit),
  };
}
