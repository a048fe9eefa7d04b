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
}

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
          `INSERT INTO models (name, version, sha256, size_bytes, blob_key, stage, contract, signed_manifest, created_at, created_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
  };
}
