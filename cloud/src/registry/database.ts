import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { openDatabase } from '../sqlite/open-database.ts';

/** The registry's SQLite handle type. */
export type RegistryDatabase = Database.Database;

// Each entry upgrades the schema by one version; never edit a shipped entry, append.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE models (
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     blob_key TEXT NOT NULL,
     contract TEXT NOT NULL,
     signed_manifest TEXT NOT NULL,
     stage TEXT NOT NULL DEFAULT 'candidate',
     created_at TEXT NOT NULL,
     created_by TEXT NOT NULL,
     PRIMARY KEY (name, version)
   );
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     secret_sha256 TEXT NOT NULL,
     labels TEXT NOT NULL DEFAULT '{}',
     created_at TEXT NOT NULL,
     online INTEGER NOT NULL DEFAULT 0,
     last_seen TEXT,
     reported TEXT,
     telemetry TEXT
   );
   CREATE TABLE desired_states (
     device_id TEXT PRIMARY KEY REFERENCES devices(id),
     revision INTEGER NOT NULL,
     document TEXT NOT NULL
   );
   CREATE TABLE rollouts (
     id TEXT PRIMARY KEY,
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     device_ids TEXT NOT NULL,
     state TEXT NOT NULL,
     created_at TEXT NOT NULL,
     created_by TEXT NOT NULL
   );`,
  `CREATE TABLE audit_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     subject TEXT NOT NULL,
     details TEXT NOT NULL DEFAULT '{}'
   );
   CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TABLE api_tokens (
     token_sha256 TEXT PRIMARY KEY,
     actor TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL,
     created_by TEXT NOT NULL
   );
   ALTER TABLE models ADD COLUMN parent_version TEXT;
   ALTER TABLE models ADD COLUMN approved_by TEXT;
   ALTER TABLE models ADD COLUMN approved_at TEXT;
   ALTER TABLE models ADD COLUMN stage_changed_at TEXT;`,
  `ALTER TABLE rollouts ADD COLUMN spec TEXT;
   ALTER TABLE rollouts ADD COLUMN progress TEXT;
   ALTER TABLE rollouts ADD COLUMN reason TEXT;
   ALTER TABLE rollouts ADD COLUMN updated_at TEXT;
   CREATE TABLE rollout_devices (
     rollout_id TEXT NOT NULL REFERENCES rollouts(id),
     device_id TEXT NOT NULL,
     wave INTEGER NOT NULL,
     previous TEXT,
     PRIMARY KEY (rollout_id, device_id)
   );
   CREATE INDEX rollouts_state ON rollouts(state);`,
  // The models each device was last assigned (live and shadow), by revision: a device may
  // download only these artifacts. Seeded from current desired states and what rollouts replaced.
  `CREATE TABLE device_assignments (
     device_id TEXT NOT NULL REFERENCES devices(id),
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     revision INTEGER NOT NULL,
     PRIMARY KEY (device_id, model_name, model_version)
   );
   INSERT OR IGNORE INTO device_assignments
     SELECT s.device_id, json_extract(s.document, '$.' || slot || '.signed.manifest.name'),
            json_extract(s.document, '$.' || slot || '.signed.manifest.version'), s.revision
       FROM desired_states s, (SELECT 'model' AS slot UNION ALL SELECT 'shadow')
      WHERE json_extract(s.document, '$.' || slot || '.signed.manifest.name') IS NOT NULL;
   INSERT OR IGNORE INTO device_assignments
     SELECT rd.device_id, json_extract(rd.previous, '$.' || slot || '.signed.manifest.name'),
            json_extract(rd.previous, '$.' || slot || '.signed.manifest.version'), 0
       FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id,
            (SELECT 'model' AS slot UNION ALL SELECT 'shadow')
      WHERE json_extract(rd.previous, '$.' || slot || '.signed.manifest.name') IS NOT NULL;`,
  // Named tokens carry a role: viewer (reads), operator (rollouts, models, labels) or admin
  // (devices, keys, tokens). Tokens made before roles could do all but manage tokens: operator.
  `ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'operator'
     CHECK (role IN ('viewer', 'operator', 'admin'));`,
  // Read-only MQTT credentials for line systems and MES: results and telemetry of granted
  // devices (a JSON array of ids, or ["*"] for every device).
  `CREATE TABLE mqtt_readers (
     name TEXT PRIMARY KEY,
     secret_sha256 TEXT NOT NULL,
     devices TEXT NOT NULL,
     created_at TEXT NOT NULL,
     created_by TEXT NOT NULL
   );`,
  // Client certificates refused though their CA signed them and they have not expired (stolen,
  // leaked), by SHA-256 of the DER certificate. No foreign key: a revocation outlives
  // decommissioning, so re-provisioning the id does not let the old certificate back in.
  `CREATE TABLE revoked_certificates (
     device_id TEXT NOT NULL,
     fingerprint_sha256 TEXT NOT NULL CHECK (length(fingerprint_sha256) = 64),
     revoked_at TEXT NOT NULL,
     revoked_by TEXT NOT NULL,
     reason TEXT,
     PRIMARY KEY (device_id, fingerprint_sha256)
   );
   CREATE INDEX revoked_certificates_fingerprint ON revoked_certificates(fingerprint_sha256);`,
  // The password of a device's (and a reader's) login on a Mosquitto whose password_file the
  // cloud writes (--mqtt-accounts files), as that file holds it ($7$, PBKDF2-SHA512): the cloud
  // sees the secret only at provisioning and rotation, and writes the file again at each start.
  // NULL: provisioned before the switch, or on another broker.
  `ALTER TABLE devices ADD COLUMN broker_password TEXT;
   ALTER TABLE mqtt_readers ADD COLUMN broker_password TEXT;`,
];

/**
 * The registry holds credential hashes: the database file is created (or
 * repaired) with mode 0600 before SQLite opens it, and SQLite gives its WAL
 * and shared-memory files the database file's mode. Existing ones are
 * repaired too.
 */
function restrictFileModes(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`])
    if (existsSync(file)) chmodSync(file, 0o600);
}

/** Opens (creating if needed) the registry database and brings its schema up to date. */
export function openRegistryDatabase(path: string): RegistryDatabase {
  return openDatabase(path, {
    migrations: MIGRATIONS,
    foreignKeys: true,
    beforeOpen: restrictFileModes,
  });
}
