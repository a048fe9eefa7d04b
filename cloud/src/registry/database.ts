import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

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
];

/** Opens (creating if needed) the registry database and brings its schema up to date. */
export function openRegistryDatabase(path: string): RegistryDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}
