import type Database from 'better-sqlite3';
import { openDatabase } from '../sqlite/open-database.ts';
import type { AlertKind, DriftFinding, DriftLevel } from './drift-evaluate.ts';

// Each entry upgrades the schema by one version; never edit a shipped entry, append.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE alerts (
     id INTEGER PRIMARY KEY,
     device_id TEXT NOT NULL, model_name TEXT NOT NULL, model_version TEXT NOT NULL,
     kind TEXT NOT NULL, feature TEXT NOT NULL, statistic TEXT NOT NULL,
     state TEXT NOT NULL, level TEXT NOT NULL, value REAL NOT NULL, peak_value REAL NOT NULL,
     frames INTEGER NOT NULL, window_start_ms INTEGER NOT NULL, window_end_ms INTEGER NOT NULL,
     opened_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL, resolved_at_ms INTEGER,
     clear_runs INTEGER NOT NULL DEFAULT 0);
   CREATE UNIQUE INDEX alerts_one_open
     ON alerts(device_id, model_name, model_version, feature, statistic) WHERE state = 'open';
   CREATE INDEX alerts_state ON alerts(state, level);
   CREATE INDEX alerts_device ON alerts(device_id, opened_at_ms);
   CREATE TABLE baselines (
     device_id TEXT NOT NULL, model_name TEXT NOT NULL, model_version TEXT NOT NULL,
     mean_image TEXT NOT NULL, at_ms INTEGER NOT NULL,
     PRIMARY KEY (device_id, model_name, model_version)) WITHOUT ROWID;`,
];

/** The state of an alert. */
export type AlertState = 'open' | 'resolved';

/** A stored drift or camera alert. */
export interface DriftAlert {
  id: number;
  deviceId: string;
  /** '' when the device ran no model. */
  modelName: string;
  modelVersion: string;
  kind: AlertKind;
  feature: string;
  statistic: string;
  state: AlertState;
  level: Exclude<DriftLevel, 'ok'>;
  value: number;
  peakValue: number;
  frames: number;
  windowStart: string;
  windowEnd: string;
  openedAt: string;
  updatedAt: string;
  resolvedAt: string | null;
}

/** A device's worst open alert per kind: 'ok' when none is open. */
export type DeviceAlertLevels = Record<AlertKind, DriftLevel>;

/** What applying a finding did to its alert. */
export type AlertTransition =
  'opened' | 'escalated' | 'deescalated' | 'updated' | 'resolved' | 'none';

/** Filters of an alert listing. */
export interface AlertQuery {
  deviceId?: string;
  state?: AlertState;
  level?: 'warning' | 'alert';
  kind?: AlertKind;
  limit?: number;
}

/** Hysteresis: an open alert resolves after `clearRuns` runs in a row below clearRatio x warning. */
export interface Hysteresis {
  clearRatio: number;
  clearRuns: number;
  /** The warning level of each statistic, by `${kind}/${feature}/${statistic}`. */
  warningOf: (finding: DriftFinding) => number;
}

/** Identity of the model a finding is about. */
export interface AlertSubject {
  deviceId: string;
  modelName: string;
  modelVersion: string;
}

interface AlertRow {
  id: number;
  device_id: string;
  model_name: string;
  model_version: string;
  kind: AlertKind;
  feature: string;
  statistic: string;
  state: AlertState;
  level: 'warning' | 'alert';
  value: number;
  peak_value: number;
  frames: number;
  window_start_ms: number;
  window_end_ms: number;
  opened_at_ms: number;
  updated_at_ms: number;
  resolved_at_ms: number | null;
  clear_runs: number;
}

/**
 * Drift alerts in their own SQLite file (WAL): at most one open alert per
 * device, model version, feature and statistic; opened at once, updated while
 * it lasts, resolved only after it stayed clearly below its warning level
 * for a few runs, so a value wavering around a level does not flap.
 */
export class AlertStore {
  readonly #db: Database.Database;
  readonly #hysteresis: Hysteresis;

  constructor(path: string, hysteresis: Hysteresis) {
    this.#db = openDatabase(path, { migrations: MIGRATIONS });
    this.#hysteresis = hysteresis;
  }

  /** Applies one run's findings for one subject in a transaction; returns the alerts that changed. */
  apply(
    subject: AlertSubject,
    findings: readonly DriftFinding[],
    nowMs: number,
  ): { transition: AlertTransition; alert: DriftAlert }[] {
    const changes: { transition: AlertTransition; alert: DriftAlert }[] = [];
    this.#db.transaction(() => {
      for (const f of findings) {
        const r = this.#applyOne(subject, f, nowMs);
        if (r !== undefined) changes.push(r);
      }
    })();
    return changes;
  }

  #applyOne(
    s: AlertSubject,
    f: DriftFinding,
    nowMs: number,
  ): { transition: AlertTransition; alert: DriftAlert } | undefined {
    const open = this.#db
      .prepare(
        `SELECT * FROM alerts WHERE device_id = ? AND model_name = ? AND model_version = ?
           AND feature = ? AND statistic = ? AND state = 'open'`,
      )
      .get(s.deviceId, s.modelName, s.modelVersion, f.feature, f.statistic) as AlertRow | undefined;
    if (open === undefined) {
      if (f.level === 'ok') return undefined;
      const info = this.#db
        .prepare(
          `INSERT INTO alerts (device_id, model_name, model_version, kind, feature, statistic,
             state, level, value, peak_value, frames, window_start_ms, window_end_ms,
             opened_at_ms, updated_at_ms, resolved_at_ms, clear_runs)
           VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)`,
        )
        .run(
          s.deviceId,
          s.modelName,
          s.modelVersion,
          f.kind,
          f.feature,
          f.statistic,
          f.level,
          f.value,
          f.value,
          f.frames,
          f.windowStartMs,
          f.windowEndMs,
          nowMs,
          nowMs,
        );
      return { transition: 'opened', alert: this.#get(Number(info.lastInsertRowid)) };
    }
    if (f.level !== 'ok') {
      this.#db
        .prepare(
          `UPDATE alerts SET level = ?, value = ?, peak_value = max(peak_value, ?), frames = ?,
             window_start_ms = ?, window_end_ms = ?, updated_at_ms = ?, clear_runs = 0 WHERE id = ?`,
        )
        .run(f.level, f.value, f.value, f.frames, f.windowStartMs, f.windowEndMs, nowMs, open.id);
      const transition: AlertTransition =
        f.level === open.level ? 'updated' : f.level === 'alert' ? 'escalated' : 'deescalated';
      return { transition, alert: this.#get(open.id) };
    }
    const { clearRatio, clearRuns, warningOf } = this.#hysteresis;
    const clear = f.value < clearRatio * warningOf(f);
    // Between the clear level and the warning level the alert holds: no flapping.
    const runs = clear ? open.clear_runs + 1 : 0;
    if (runs >= clearRuns) {
      this.#db
        .prepare(
          `UPDATE alerts SET state = 'resolved', value = ?, frames = ?, window_start_ms = ?,
             window_end_ms = ?, updated_at_ms = ?, resolved_at_ms = ?, clear_runs = ? WHERE id = ?`,
        )
        .run(f.value, f.frames, f.windowStartMs, f.windowEndMs, nowMs, nowMs, runs, open.id);
      return { transition: 'resolved', alert: this.#get(open.id) };
    }
    this.#db
      .prepare(`UPDATE alerts SET value = ?, updated_at_ms = ?, clear_runs = ? WHERE id = ?`)
      .run(f.value, nowMs, runs, open.id);
    return { transition: 'none', alert: this.#get(open.id) };
  }

  #get(id: number): DriftAlert {
    return alertOf(this.#db.prepare(`SELECT * FROM alerts WHERE id = ?`).get(id) as AlertRow);
  }

  /** Alerts, newest first. */
  list(q: AlertQuery = {}): DriftAlert[] {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (q.deviceId !== undefined) {
      clauses.push('device_id = ?');
      params.push(q.deviceId);
    }
    if (q.state !== undefined) {
      clauses.push('state = ?');
      params.push(q.state);
    }
    if (q.level !== undefined) {
      clauses.push('level = ?');
      params.push(q.level);
    }
    if (q.kind !== undefined) {
      clauses.push('kind = ?');
      params.push(q.kind);
    }
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = this.#db
      .prepare(`SELECT * FROM alerts ${where} ORDER BY opened_at_ms DESC, id DESC LIMIT ?`)
      .all(...params, q.limit ?? 1000) as AlertRow[];
    return rows.map(alertOf);
  }

  /**
   * Each device's worst open alert of each kind (the fleet table's camera and drift columns):
   * one grouped read of the open alerts, which stay few whatever the fleet's size.
   */
  openLevelsByDevice(): Map<string, DeviceAlertLevels> {
    const rows = this.#db
      .prepare(
        `SELECT device_id, kind, MAX(CASE level WHEN 'alert' THEN 2 ELSE 1 END) AS rank
           FROM alerts WHERE state = 'open' GROUP BY device_id, kind`,
      )
      .all() as { device_id: string; kind: AlertKind; rank: number }[];
    const levels = new Map<string, DeviceAlertLevels>();
    for (const r of rows) {
      const device = levels.get(r.device_id) ?? { camera: 'ok', product: 'ok' };
      device[r.kind] = r.rank === 2 ? 'alert' : 'warning';
      levels.set(r.device_id, device);
    }
    return levels;
  }

  /** Open alerts counted by kind and level (for metrics). */
  openCounts(): { kind: AlertKind; level: 'warning' | 'alert'; count: number }[] {
    return this.#db
      .prepare(
        `SELECT kind, level, count(*) AS count FROM alerts WHERE state = 'open' GROUP BY kind, level`,
      )
      .all() as { kind: AlertKind; level: 'warning' | 'alert'; count: number }[];
  }

  /** The mean image a device's first judged window showed for a model version. */
  baseline(s: AlertSubject): number[] | undefined {
    const row = this.#db
      .prepare(
        `SELECT mean_image FROM baselines WHERE device_id = ? AND model_name = ? AND model_version = ?`,
      )
      .get(s.deviceId, s.modelName, s.modelVersion) as { mean_image: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.mean_image) as number[]);
  }

  /** Keeps `image` as the baseline unless one is stored already. */
  setBaselineOnce(s: AlertSubject, image: readonly number[], nowMs: number): void {
    this.#db
      .prepare(`INSERT OR IGNORE INTO baselines VALUES (?, ?, ?, ?, ?)`)
      .run(s.deviceId, s.modelName, s.modelVersion, JSON.stringify(image), nowMs);
  }

  /** Closes the database; idempotent. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

function alertOf(r: AlertRow): DriftAlert {
  return {
    id: r.id,
    deviceId: r.device_id,
    modelName: r.model_name,
    modelVersion: r.model_version,
    kind: r.kind,
    feature: r.feature,
    statistic: r.statistic,
    state: r.state,
    level: r.level,
    value: r.value,
    peakValue: r.peak_value,
    frames: r.frames,
    windowStart: new Date(r.window_start_ms).toISOString(),
    windowEnd: new Date(r.window_end_ms).toISOString(),
    openedAt: new Date(r.opened_at_ms).toISOString(),
    updatedAt: new Date(r.updated_at_ms).toISOString(),
    resolvedAt: r.resolved_at_ms === null ? null : new Date(r.resolved_at_ms).toISOString(),
  };
}
