import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LinesightError } from '@linesight/protocol';

const LOCK_FILE = 'cloud.lock';
const HOLDER_FILE = 'cloud.lock.json';

/** Who holds a data directory, as the holder wrote it (for the refusal message only). */
interface LockHolder {
  pid: number;
  host: string;
  since: string;
}

/**
 * One cloud process per data directory. The lock is SQLite's own exclusive
 * file lock on `<dataDir>/cloud.lock` (a POSIX advisory lock the kernel drops
 * when the process dies, so a crash or kill -9 leaves nothing to clean up);
 * `cloud.lock.json` beside it names the holder for the message a second
 * process gets.
 */
export class DataDirLock {
  readonly #db: Database.Database;
  readonly #holderPath: string;
  #released = false;

  private constructor(db: Database.Database, holderPath: string) {
    this.#db = db;
    this.#holderPath = holderPath;
  }

  /** Takes the lock, or throws ERR_CLOUD_DATA_DIR_IN_USE naming the holder. */
  static acquire(dataDir: string, options: { waitMs?: number } = {}): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const db = new Database(join(dataDir, LOCK_FILE));
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.round(options.waitMs ?? 1000))}`);
      db.pragma('locking_mode = EXCLUSIVE');
      // In exclusive locking mode the first write takes the file's exclusive lock
      // and keeps it until the connection closes.
      db.exec('CREATE TABLE IF NOT EXISTS lock (id INTEGER PRIMARY KEY)');
      db.exec('INSERT OR REPLACE INTO lock (id) VALUES (1)');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw inUse(dataDir);
      throw err;
    }
    const holderPath = join(dataDir, HOLDER_FILE);
    const holder: LockHolder = {
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
    };
    writeFileSync(holderPath, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
    return new DataDirLock(db, holderPath);
  }

  /** Gives the lock up (idempotent). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    rmSync(this.#holderPath, { force: true });
    this.#db.close();
  }
}

function inUse(dataDir: string): LinesightError {
  let who = 'another process';
  try {
    const h = JSON.parse(readFileSync(join(dataDir, HOLDER_FILE), 'utf8')) as LockHolder;
    who = `process ${h.pid} on ${h.host}, running since ${h.since}`;
  } catch {
    // The holder has not written its name yet: the generic words will do.
  }
  return new LinesightError(
    'ERR_CLOUD_DATA_DIR_IN_USE',
    `another cloud (${who}) uses the data directory ${dataDir}: stop it first, or give this one another --data-dir`,
    { details: { dataDir } },
  );
}
