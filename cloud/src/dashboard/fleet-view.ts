import type { DeviceAlertLevels } from '../drift/alert-store.ts';
import type { DriftLevel } from '../drift/drift-evaluate.ts';
import type { DeviceRecord } from '../registry/device-registry.ts';

/** One fleet-table row: what the dashboard shows for a device. */
export interface FleetRow {
  id: string;
  labels: Record<string, string>;
  online: boolean;
  lastSeen: string | null;
  phase: string | null;
  /** The version the device reports running (null before its first model). */
  version: string | null;
  model: string | null;
  /** The version the cloud asked for, when it differs from the running one it is still moving. */
  desiredVersion: string | null;
  fps: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  framesCaptured: number;
  framesScored: number;
  /** Defect verdicts per scored frame since the agent started (null before any frame). */
  defectRate: number | null;
  /** Unknown verdicts per captured frame since the agent started (null before any frame). */
  unknownRate: number | null;
  errors: number;
  lastError: { code: string; message: string } | null;
  /** The device's worst open camera-health alert ('ok' when none is open). */
  camera: DriftLevel;
  /** The device's worst open product-drift alert ('ok' when none is open). */
  drift: DriftLevel;
}

// Telemetry and reported state both carry frame counters; the newer one wins.
function latestCounters(d: Pick<DeviceRecord, 'reported' | 'telemetry'>) {
  const r = d.reported;
  const t = d.telemetry;
  if (r !== null && t !== null)
    return Date.parse(r.updatedAt) >= Date.parse(t.at) ? r.frames : t.frames;
  return (r ?? t)?.frames;
}

const NO_ALERTS: DeviceAlertLevels = { camera: 'ok', product: 'ok' };

/** Builds a device's fleet row from what the registry holds and its open alerts. */
export function fleetRow(d: DeviceRecord, alerts: DeviceAlertLevels = NO_ALERTS): FleetRow {
  const counters = latestCounters(d);
  const running = d.reported?.model ?? null;
  const desired = d.desired?.model?.signed.manifest ?? null;
  const scored = counters?.scored ?? 0;
  const captured = counters?.captured ?? 0;
  const t = d.telemetry;
  const err = d.reported?.lastError;
  return {
    id: d.id,
    labels: d.labels,
    online: d.online,
    lastSeen: d.lastSeen,
    phase: d.reported?.phase ?? null,
    version: running?.version ?? null,
    model: running?.name ?? desired?.name ?? null,
    desiredVersion: desired?.version ?? null,
    fps: t?.fps ?? null,
    p50Ms: t?.latencyMs.p50 ?? null,
    p99Ms: t?.latencyMs.p99 ?? null,
    framesCaptured: captured,
    framesScored: scored,
    defectRate: scored > 0 ? (counters?.defects ?? 0) / scored : null,
    unknownRate: captured > 0 ? (counters?.unknown ?? 0) / captured : null,
    errors: t?.errors ?? 0,
    lastError: err ? { code: err.code, message: err.message } : null,
    camera: alerts.camera,
    drift: alerts.product,
  };
}

/** Counts for the fleet page's header. */
export interface FleetTotals {
  devices: number;
  online: number;
  /** Devices whose running version differs from the desired one. */
  moving: number;
  withErrors: number;
}

/** Sums a fleet's rows into header counts. */
export function fleetTotals(rows: readonly FleetRow[]): FleetTotals {
  let online = 0;
  let moving = 0;
  let withErrors = 0;
  for (const r of rows) {
    if (r.online) online++;
    if (r.desiredVersion !== null && r.desiredVersion !== r.version) moving++;
    if (r.lastError !== null) withErrors++;
  }
  return { devices: rows.length, online, moving, withErrors };
}
