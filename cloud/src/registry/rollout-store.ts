import { LinesightError, type ModelAssignment } from '@linesight/protocol';
import type { RegistryDatabase } from './database.ts';
import { StatementCache } from './statement-cache.ts';
import type { TelemetrySample } from '../rollouts/gates.ts';
import {
  ACTIVE_STATES,
  DEFAULT_GATES,
  type RolloutProgress,
  type RolloutSpec,
} from '../rollouts/rollout-types.ts';

/** A rollout as stored. */
export interface RolloutRecord {
  id: string;
  modelName: string;
  modelVersion: string;
  deviceIds: readonly string[];
  state: string;
  createdAt: string;
  createdBy: string;
  /** What was asked (null for rollouts stored before waves existed: all-at-once). */
  spec: RolloutSpec | null;
  progress: RolloutProgress | null;
  /** Why the rollout ended as it did (rolled back, aborted, failed). */
  reason: string | null;
  updatedAt: string | null;
}

/** What a device ran before a rollout touched it: restored on rollback. */
export interface PreviousAssignment {
  model: ModelAssignment | null;
  shadow: ModelAssignment | null;
  /**
   * Its telemetry then: its history on the previous version, which the last
   * wave is judged against (absent in rows from before it was kept).
   */
  telemetry?: TelemetrySample | null;
}

interface RolloutRow {
  id: string;
  model_name: string;
  model_version: string;
  device_ids: string;
  state: string;
  created_at: string;
  created_by: string;
  spec: string | null;
  progress: string | null;
  reason: string | null;
  updated_at: string | null;
}

/** Rollouts, their wave plan and each device's pre-rollout assignment, in SQLite. */
export class RolloutStore {
  readonly #db: RegistryDatabase;
  // The engine reads its active rollouts four times a second, and a status read, each
  // rollout's record and wave plan: statements are prepared once.
  readonly #statements: StatementCache;
  /**
   * Rollouts' wave plans and device lists, parsed: a plan never changes once stored, and
   * reading and parsing 10,000 devices' rows on every status read and engine tick cost
   * more than the rest of the status. Kept for every active rollout (the engine reads them
   * four times a second) and for the most recently read of the others, so that listing a
   * long history of ended rollouts cannot push the active ones out.
   */
  readonly #parsed = new Map<string, ParsedRollout>();

  constructor(db: RegistryDatabase) {
    this.#db = db;
    this.#statements = new StatementCache(db);
  }

  /** Inserts a rollout and its wave plan (one transaction). */
  add(r: RolloutRecord, waves: readonly (readonly string[])[] = [r.deviceIds]): void {
    const insertDevice = this.#db.prepare(
      'INSERT INTO rollout_devices (rollout_id, device_id, wave) VALUES (?, ?, ?)',
    );
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO rollouts (id, model_name, model_version, device_ids, state, created_at, created_by, spec, progress, reason, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          r.id,
          r.modelName,
          r.modelVersion,
          JSON.stringify(r.deviceIds),
          r.state,
          r.createdAt,
          r.createdBy,
          r.spec === null ? null : JSON.stringify(r.spec),
          r.progress === null ? null : JSON.stringify(r.progress),
          r.reason,
          r.updatedAt,
        );
      for (const [wave, ids] of waves.entries())
        for (const id of ids) insertDevice.run(r.id, id, wave);
    })();
  }

  /** One rollout; ERR_CLOUD_NOT_FOUND when absent. */
  get(id: string): RolloutRecord {
    const row = this.#statements.get('SELECT * FROM rollouts WHERE id = ?').get(id) as
      RolloutRow | undefined;
    if (row === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `rollout ${id} does not exist`);
    return this.#fromRow(row);
  }

  /** Every rollout, newest first. */
  list(): RolloutRecord[] {
    return (
      this.#statements.get('SELECT * FROM rollouts ORDER BY created_at DESC').all() as RolloutRow[]
    ).map((row) => this.#fromRow(row));
  }

  /** Rollouts in one of the given states, oldest first. */
  listInStates(states: readonly string[]): RolloutRecord[] {
    const marks = states.map(() => '?').join(', ');
    return (
      this.#statements
        .get(`SELECT * FROM rollouts WHERE state IN (${marks}) ORDER BY created_at`)
        .all(...states) as RolloutRow[]
    ).map((row) => this.#fromRow(row));
  }

  /** Sets a rollout's state (and optionally its reason). */
  setState(id: string, state: string, reason?: string): void {
    this.#statements
      .get(
        'UPDATE rollouts SET state = ?, reason = COALESCE(?, reason), updated_at = ? WHERE id = ?',
      )
      .run(state, reason ?? null, new Date().toISOString(), id);
  }

  /** Saves the engine's progress (and optionally a new state and reason) in one statement. */
  saveProgress(id: string, progress: RolloutProgress, state?: string, reason?: string): void {
    this.#statements
      .get(
        `UPDATE rollouts SET progress = ?, state = COALESCE(?, state), reason = COALESCE(?, reason), updated_at = ? WHERE id = ?`,
      )
      .run(JSON.stringify(progress), state ?? null, reason ?? null, new Date().toISOString(), id);
  }

  /** The device ids of each wave, in wave order. */
  waves(id: string): readonly (readonly string[])[] {
    const parsed = this.#recent(id);
    if (parsed.waves !== undefined) return parsed.waves;
    const rows = this.#statements
      .get('SELECT device_id, wave FROM rollout_devices WHERE rollout_id = ? ORDER BY rowid')
      .all(id) as { device_id: string; wave: number }[];
    const waves: string[][] = [];
    for (const row of rows) (waves[row.wave] ??= []).push(row.device_id);
    for (let i = 0; i < waves.length; i++) waves[i] ??= [];
    // Shared between callers: frozen, so a caller changing a plan fails loudly.
    parsed.waves = Object.freeze(waves.map((w) => Object.freeze(w)));
    return parsed.waves;
  }

  /**
   * The parsed entry of a rollout, made the most recent; beyond the bound the oldest
   * entries of rollouts not known to be active go.
   */
  #recent(id: string, active?: boolean): ParsedRollout {
    let entry = this.#parsed.get(id);
    this.#parsed.delete(id);
    entry ??= { active: false };
    if (active !== undefined) entry.active = active;
    this.#parsed.set(id, entry);
    let ended = 0;
    for (const e of this.#parsed.values()) if (!e.active) ended++;
    for (const [old, e] of this.#parsed) {
      if (ended <= PARSED_ENDED_ROLLOUTS) break;
      if (e.active || old === id) continue;
      this.#parsed.delete(old);
      ended--;
    }
    return entry;
  }

  #fromRow(row: RolloutRow): RolloutRecord {
    const parsed = this.#recent(row.id, ACTIVE_STATES.has(row.state));
    if (parsed.deviceIds?.text !== row.device_ids)
      parsed.deviceIds = {
        text: row.device_ids,
        ids: Object.freeze(JSON.parse(row.device_ids) as string[]),
      };
    return fromRow(row, parsed.deviceIds.ids);
  }

  /** Records what devices ran before the rollout first touched them (kept if already recorded). */
  recordPrevious(id: string, previous: ReadonlyMap<string, PreviousAssignment>): void {
    const stmt = this.#db.prepare(
      'UPDATE rollout_devices SET previous = ? WHERE rollout_id = ? AND device_id = ? AND previous IS NULL',
    );
    this.#db.transaction(() => {
      for (const [deviceId, p] of previous) stmt.run(JSON.stringify(p), id, deviceId);
    })();
  }

  /** What each touched device ran before the rollout. */
  previous(id: string): Map<string, PreviousAssignment> {
    const rows = this.#db
      .prepare(
        'SELECT device_id, previous FROM rollout_devices WHERE rollout_id = ? AND previous IS NOT NULL',
      )
      .all(id) as { device_id: string; previous: string }[];
    return new Map(rows.map((r) => [r.device_id, JSON.parse(r.previous) as PreviousAssignment]));
  }
}

/** What the store keeps parsed of one rollout (see RolloutStore.#parsed). */
interface ParsedRollout {
  /** The rollout was active when its row was last read (kept whatever the bound). */
  active: boolean;
  waves?: readonly (readonly string[])[];
  deviceIds?: { text: string; ids: readonly string[] };
}

// Ended (or not yet read) rollouts whose plan and device list stay parsed, most recent first.
const PARSED_ENDED_ROLLOUTS = 16;

function fromRow(row: RolloutRow, deviceIds: readonly string[]): RolloutRecord {
  return {
    id: row.id,
    modelName: row.model_name,
    modelVersion: row.model_version,
    deviceIds,
    state: row.state,
    createdAt: row.created_at,
    createdBy: row.created_by,
    spec: row.spec === null ? null : withCurrentDefaults(JSON.parse(row.spec) as RolloutSpec),
    progress: row.progress === null ? null : (JSON.parse(row.progress) as RolloutProgress),
    reason: row.reason,
    updatedAt: row.updated_at,
  };
}

/** A spec stored before a gate limit existed gets that limit's default. */
function withCurrentDefaults(spec: RolloutSpec): RolloutSpec {
  return { ...spec, gates: { ...DEFAULT_GATES, ...spec.gates } };
}
