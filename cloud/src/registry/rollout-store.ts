import { LinesightError } from '@linesight/protocol';
import type { RegistryDatabase } from './database.ts';

/** A rollout as stored. Waves and gates come with the rollout issue. */
export interface RolloutRecord {
  id: string;
  modelName: string;
  modelVersion: string;
  deviceIds: string[];
  state: string;
  createdAt: string;
  createdBy: string;
}

interface RolloutRow {
  id: string;
  model_name: string;
  model_version: string;
  device_ids: string;
  state: string;
  created_at: string;
  created_by: string;
}

/** Rollouts in SQLite. */
export class RolloutStore {
  readonly #db: RegistryDatabase;

  constructor(db: RegistryDatabase) {
    this.#db = db;
  }

  /** Inserts a rollout. */
  add(r: RolloutRecord): void {
    this.#db
      .prepare(
        'INSERT INTO rollouts (id, model_name, model_version, device_ids, state, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        r.id,
        r.modelName,
        r.modelVersion,
        JSON.stringify(r.deviceIds),
        r.state,
        r.createdAt,
        r.createdBy,
      );
  }

  /** One rollout; ERR_CLOUD_NOT_FOUND when absent. */
  get(id: string): RolloutRecord {
    const row = this.#db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as
      RolloutRow | undefined;
    if (row === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `rollout ${id} does not exist`);
    return fromRow(row);
  }

  /** Every rollout, newest first. */
  list(): RolloutRecord[] {
    return (
      this.#db.prepare('SELECT * FROM rollouts ORDER BY created_at DESC').all() as RolloutRow[]
    ).map(fromRow);
  }

  /** Sets a rollout's state. */
  setState(id: string, state: string): void {
    this.#db.prepare('UPDATE rollouts SET state = ? WHERE id = ?').run(state, id);
  }
}

function fromRow(row: RolloutRow): RolloutRecord {
  return {
    id: row.id,
    modelName: row.model_name,
    modelVersion: row.model_version,
    deviceIds: JSON.parse(row.device_ids) as string[],
    state: row.state,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}
