import type { ModelContract } from '@linesight/vision';
import { LinesightError, type SignedManifest } from '@linesight/protocol';
import type { RegistryDatabase } from './database.ts';

/** One registered model version. */
export interface ModelVersion {
  name: string;
  version: string;
  sha256: string;
  sizeBytes: number;
  blobKey: string;
  stage: string;
  contract: ModelContract;
  signed: SignedManifest;
  createdAt: string;
  createdBy: string;
  parentVersion: string | null;
  approvedBy: string | null;
  approvedAt: string | null;
  stageChangedAt: string | null;
}

/** Model lifecycle stages; `production` needs a second actor's approval. */
export const MODEL_STAGES = ['candidate', 'staging', 'production', 'archived'] as const;
/** A model stage. */
export type ModelStage = (typeof MODEL_STAGES)[number];

interface ModelRow {
  name: string;
  version: string;
  sha256: string;
  size_bytes: number;
  blob_key: string;
  stage: string;
  contract: string;
  signed_manifest: string;
  created_at: string;
  created_by: string;
  parent_version: string | null;
  approved_by: string | null;
  approved_at: string | null;
  stage_changed_at: string | null;
}

/** Model versions in SQLite; artifacts live in the blob store under `blobKey`. */
export class ModelRegistry {
  readonly #db: RegistryDatabase;

  constructor(db: RegistryDatabase) {
    this.#db = db;
  }

  /** Adds a version; ERR_CLOUD_CONFLICT when name@version exists. */
  add(model: ModelVersion): void {
    try {
      this.#db
        .prepare(
          `INSERT INTO models (name, version, sha256, size_bytes, blob_key, stage, contract, signed_manifest, created_at, created_by, parent_version)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          model.name,
          model.version,
          model.sha256,
          model.sizeBytes,
          model.blobKey,
          model.stage,
          JSON.stringify(model.contract),
          JSON.stringify(model.signed),
          model.createdAt,
          model.createdBy,
          model.parentVersion,
        );
    } catch (cause) {
      if ((cause as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new LinesightError(
          'ERR_CLOUD_CONFLICT',
          `model ${model.name}@${model.version} is already registered`,
          { cause },
        );
      }
      throw cause;
    }
  }

  /** Records a second actor's approval for production. */
  approve(name: string, version: string, actor: string): void {
    this.#db
      .prepare('UPDATE models SET approved_by = ?, approved_at = ? WHERE name = ? AND version = ?')
      .run(actor, new Date().toISOString(), name, version);
  }

  /** Sets a version's stage; moving one to production archives the previous production version of that name. */
  setStage(name: string, version: string, stage: ModelStage): void {
    const now = new Date().toISOString();
    this.#db.transaction(() => {
      if (stage === 'production') {
        this.#db
          .prepare(
            `UPDATE models SET stage = 'archived', stage_changed_at = ? WHERE name = ? AND stage = 'production' AND version != ?`,
          )
          .run(now, name, version);
      }
      this.#db
        .prepare('UPDATE models SET stage = ?, stage_changed_at = ? WHERE name = ? AND version = ?')
        .run(stage, now, name, version);
    })();
  }

  /** Replaces a version's signed manifest (after a key rotation). */
  updateSigned(name: string, version: string, signed: SignedManifest): void {
    this.#db
      .prepare('UPDATE models SET signed_manifest = ? WHERE name = ? AND version = ?')
      .run(JSON.stringify(signed), name, version);
  }

  /** True when name@version is registered. */
  has(name: string, version: string): boolean {
    return (
      this.#db.prepare('SELECT 1 FROM models WHERE name = ? AND version = ?').get(name, version) !==
      undefined
    );
  }

  /** One version; ERR_CLOUD_NOT_FOUND when absent. */
  get(name: string, version: string): ModelVersion {
    const row = this.#db
      .prepare('SELECT * FROM models WHERE name = ? AND version = ?')
      .get(name, version) as ModelRow | undefined;
    if (row === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `model ${name}@${version} is not registered`);
    return fromRow(row);
  }

  /** Every version, newest first. */
  list(): ModelVersion[] {
    const rows = this.#db
      .prepare('SELECT * FROM models ORDER BY created_at DESC, name, version')
      .all() as ModelRow[];
    return rows.map(fromRow);
  }
}

function fromRow(row: ModelRow): ModelVersion {
  return {
    name: row.name,
    version: row.version,
    sha256: row.sha256,
    sizeBytes: row.size_bytes,
    blobKey: row.blob_key,
    stage: row.stage,
    contract: JSON.parse(row.contract) as ModelContract,
    signed: JSON.parse(row.signed_manifest) as SignedManifest,
    createdAt: row.created_at,
    createdBy: row.created_by,
    parentVersion: row.parent_version,
    approvedBy: row.approved_by,
    approvedAt: row.approved_at,
    stageChangedAt: row.stage_changed_at,
  };
}
