import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/** How a store's SQLite file is opened. */
export interface OpenDatabaseOptions {
  /** Schema steps in order; step N runs once, in a transaction, and sets `user_version` to N + 1. */
  migrations: readonly string[];
  /** Enforce foreign keys (SQLite's default is off). */
  foreignKeys?: boolean;
  /** Runs after the folder exists and before the file is opened (e.g. to set its mode). */
  beforeOpen?: (path: string) => void;
}

/**
 * Opens (creating its folder and file if needed) one of the cloud's SQLite
 * stores: WAL journal, normal sync, a 5 s busy timeout, and its schema brought
 * up to date by `migrations`. `:memory:` works too (for tests).
 */
export function openDatabase(path: string, options: OpenDatabaseOptions): Database.Database {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true });
    options.beforeOpen?.(path);
  }
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    if (options.foreignKeys) db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const current = db.pragma('user_version', { simple: true }) as number;
    for (let v = current; v < options.migrations.length; v++) {
      db.transaction(() => {
        db.exec(options.migrations[v] as string);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
