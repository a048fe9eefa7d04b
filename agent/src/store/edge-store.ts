import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import {
  describeError,
  type EventRecord,
  type EvictionCounts,
  type SampleClass,
  type SampleRecord,
  type StoreState,
  type TelemetryWindow,
  type Verdict,
  type VerdictMinute,
  type VerdictRecord,
} from '@linesight/protocol';
import { syncDir, writeFileAtomic } from '@linesight/durable-fs';
import { IdleGapTimer } from '../idle-gap-timer.ts';

/** Options of the device store. */
export interface EdgeStoreOptions {
  /** Folder of the store: `store.sqlite` and `images/` live here. */
  dir: string;
  /** Disk quota for the database and the image folder together. */
  quotaBytes: number;
  logger: Logger;
  /** Buffered verdict rows are written at least this often (default 200 ms). */
  flushIntervalMs?: number;
  /** A flush is scheduled as soon as this many rows wait (default 256). */
  flushRows?: number;
  /** Rows waiting beyond this are dropped and counted as lost writes (default 50,000). */
  maxBufferedRows?: number;
  /** The quota is checked this often (default 1000 ms). */
  quotaCheckMs?: number;
  /**
   * Free space the store leaves on its filesystem for everything else: below it the store
   * evicts as if over its quota (default 5 % of the filesystem, at least 1 MiB, at most 64 MiB).
   */
  diskReserveBytes?: number;
  /** Free and total bytes of the filesystem holding `dir` (default statfs; tests simulate a disk). */
  diskSpace?: (dir: string) => DiskSpace;
  /** A full disk is reported until it has had room for this long (default 30 s), so the state does not flap. */
  diskFullHoldMs?: number;
}

/** Free and total bytes of a filesystem. */
export interface DiskSpace {
  freeBytes: number;
  totalBytes: number;
}

/** Free space of the filesystem holding `dir`, as an unprivileged process may use it. */
export function statDiskSpace(dir: string): DiskSpace {
  const s = statfsSync(dir);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
}

/** What the store forwards, each kind with its own queue. */
export type StoreKind = 'verdicts' | 'minutes' | 'windows' | 'events' | 'samples';

/** A verdict row before the store gives it its id. */
export type VerdictInput = Omit<VerdictRecord, 'boot' | 'seq'>;
/** A window before the store gives it its id. */
export type WindowInput = Omit<TelemetryWindow, 'boot' | 'seq'>;
/** An event before the store gives it its id. */
export type EventInput = Omit<EventRecord, 'boot' | 'seq'>;

/**
 * The newest camera frame a process recorded itself (not a handed-over verdict), kept in
 * the store with the rows: a line guard's next worker checks against it whether the
 * process that died had recorded a frame before the guard answered it `unknown`.
 */
export interface LineFrameMark {
  /** The process that recorded it. */
  pid: number;
  boot: number;
  frameSeq: number;
  /** The frame's capture time (ISO 8601), as in the verdict row. */
  at: string;
}

/** A sampled frame's metadata before the store gives it its id. */
export interface SampleInput {
  frameSeq: number;
  at: string;
  class: SampleClass;
  modelName: string | null;
  modelVersion: string | null;
  score: number | null;
  verdict: Verdict;
  reason?: string;
}

/** A sample whose files are in object storage under these keys. */
export interface UploadMark {
  id: number;
  objectKey: string;
  mapKey?: string | undefined;
}

/** A stored sample waiting for its upload. */
export interface StoredSample extends SampleInput {
  id: number;
  boot: number;
  seq: number;
  imagePath: string;
  imageBytes: number;
  imageSha256: string;
  mapPath: string | undefined;
  mapBytes: number;
  mapSha256: string | undefined;
}

/** Records of one kind taken for sending, with the id range to acknowledge. */
export interface TakenBatch<T> {
  kind: StoreKind;
  firstId: number;
  lastId: number;
  records: T[];
}

const LOW_WATER = 0.9;
/** Sample classes from the first evicted to the last. */
const CLASS_ORDER: readonly SampleClass[] = ['random', 'uncertain', 'unknown', 'defect'];
/** Windows and events held in memory while the disk refuses them, at most. */
const MAX_HELD_RECORDS = 1000;

/** The store's limits right now: its quota, or less when the disk holds less. */
interface Limits {
  usedBytes: number;
  /** Above this the store evicts. */
  limitBytes: number;
  /** Evictions go down to this. */
  targetBytes: number;
  freeBytes: number;
  reserveBytes: number;
}

// Row ids are AUTOINCREMENT: SQLite never hands out an id again, even after the
// table was emptied. Forwarding relies on that twice: `take` hands out rows above
// a cursor, and a late acknowledgement deletes its id range; with reused ids, new
// rows would wait below the cursor and a late ack could delete rows never sent.
const ROW_TABLES = {
  verdicts: `id INTEGER PRIMARY KEY AUTOINCREMENT, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    frame_seq INTEGER NOT NULL, at TEXT NOT NULL, model_name TEXT, model_version TEXT,
    score REAL, verdict TEXT NOT NULL, reason TEXT, latency_ms REAL NOT NULL`,
  minutes: `id INTEGER PRIMARY KEY AUTOINCREMENT, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    minute TEXT NOT NULL, model_name TEXT, model_version TEXT, good INTEGER NOT NULL,
    defect INTEGER NOT NULL, unknown INTEGER NOT NULL`,
  windows: 'id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL',
  events: 'id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL',
  samples: `id INTEGER PRIMARY KEY AUTOINCREMENT, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    class TEXT NOT NULL, state TEXT NOT NULL, meta TEXT NOT NULL, image_path TEXT NOT NULL,
    image_bytes INTEGER NOT NULL, image_sha256 TEXT NOT NULL, map_path TEXT,
    map_bytes INTEGER NOT NULL DEFAULT 0, map_sha256 TEXT, object_key TEXT, map_key TEXT`,
} as const;

/** The kinds the backlog counts: every row of a table, but samples only when their files exist. */
const BACKLOG_KINDS = ['verdicts', 'windows', 'events', 'samples'] as const;
const COUNTED = (kind: string, row: 'NEW' | 'OLD') =>
  kind === 'samples' ? ` WHEN ${row}.state != 'missing'` : '';

/**
 * Backlog sizes kept by triggers in the same transaction as each insert, delete and sample
 * state change, so reading them is one small query: telemetry asks on the frame loop's thread,
 * and COUNT(*) there would grow with days of buffered records. Recounted at each start.
 */
const BACKLOG_COUNTS = `
  CREATE TABLE IF NOT EXISTS backlog_counts (kind TEXT PRIMARY KEY, n INTEGER NOT NULL);
  ${BACKLOG_KINDS.map(
    (kind) => `
  CREATE TRIGGER IF NOT EXISTS ${kind}_counted AFTER INSERT ON ${kind}${COUNTED(kind, 'NEW')}
    BEGIN UPDATE backlog_counts SET n = n + 1 WHERE kind = '${kind}'; END;
  CREATE TRIGGER IF NOT EXISTS ${kind}_uncounted AFTER DELETE ON ${kind}${COUNTED(kind, 'OLD')}
    BEGIN UPDATE backlog_counts SET n = n - 1 WHERE kind = '${kind}'; END;`,
  ).join('')}
  CREATE TRIGGER IF NOT EXISTS samples_recounted AFTER UPDATE OF state ON samples
    WHEN (OLD.state = 'missing') != (NEW.state = 'missing')
    BEGIN UPDATE backlog_counts SET n = n + (CASE WHEN NEW.state = 'missing' THEN -1 ELSE 1 END)
      WHERE kind = 'samples'; END;
`;

/** Sets the kept backlog counts from the tables (at start; a store from before they were kept). */
const RECOUNT_BACKLOG = BACKLOG_KINDS.map(
  (kind) =>
    `INSERT INTO backlog_counts (kind, n) VALUES ('${kind}', (SELECT COUNT(*) FROM ${kind}${
      kind === 'samples' ? " WHERE state != 'missing'" : ''
    })) ON CONFLICT(kind) DO UPDATE SET n = excluded.n;`,
).join('\n');

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  ${Object.entries(ROW_TABLES)
    .map(([table, columns]) => `CREATE TABLE IF NOT EXISTS ${table} (${columns});`)
    .join('\n  ')}
  CREATE INDEX IF NOT EXISTS samples_state ON samples(state, id);
  CREATE INDEX IF NOT EXISTS samples_class ON samples(class, id);
  ${BACKLOG_COUNTS}
`;

/**
 * Rebuilds row tables a store from before AUTOINCREMENT created with plain
 * rowid keys, keeping every row and its id (so new ids continue above them).
 */
function upgradeRowIds(db: Database.Database): void {
  const plain = Object.keys(ROW_TABLES).filter((table) => {
    const row = db
      .prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
      .get(table) as { sql: string } | undefined;
    return row !== undefined && !/AUTOINCREMENT/i.test(row.sql);
  }) as (keyof typeof ROW_TABLES)[];
  if (plain.length === 0) return;
  db.transaction(() => {
    for (const table of plain) {
      db.exec(`ALTER TABLE ${table} RENAME TO ${table}_plain_ids`);
      db.exec(`CREATE TABLE ${table} (${ROW_TABLES[table]})`);
      db.exec(`INSERT INTO ${table} SELECT * FROM ${table}_plain_ids`);
      db.exec(`DROP TABLE ${table}_plain_ids`);
    }
  })();
}

interface VerdictRow {
  id: number;
  boot: number;
  seq: number;
  frame_seq: number;
  at: string;
  model_name: string | null;
  model_version: string | null;
  score: number | null;
  verdict: Verdict;
  reason: string | null;
  latency_ms: number;
}

interface SampleRow {
  id: number;
  boot: number;
  seq: number;
  class: SampleClass;
  state: string;
  meta: string;
  image_path: string;
  image_bytes: number;
  image_sha256: string;
  map_path: string | null;
  map_bytes: number;
  map_sha256: string | null;
  object_key: string | null;
  map_key: string | null;
}

/**
 * The agent's one local store (SQLite in WAL mode plus an image folder):
 * the verdict log, telemetry windows, events and samples, each with a stable
 * id (boot, seq), kept until the broker acknowledges them, under a disk
 * quota with eviction by priority. Verdict rows are buffered and written in
 * batches off the frame path. A failing disk is a reported state
 * (`diskFull`); no method called on the frame path throws.
 */
export class EdgeStore {
  readonly boot: number;
  readonly imagesDir: string;
  readonly #db: Database.Database;
  /** Statements prepared once and reused: preparing one costs more than running it. */
  readonly #prepared = new Map<string, Database.Statement>();
  #pageSize = 0;
  /**
   * For each query that found nothing to hand out, the connection's change count then: the
   * forwarder asks ten times a second, and until a row changes the answer is still nothing.
   */
  #emptyAt = new Map<StoreKind | 'pendingUploads', number>();
  readonly #o: Required<Omit<EdgeStoreOptions, 'logger' | 'dir' | 'diskReserveBytes'>> & {
    logger: Logger;
    diskReserveBytes: number | undefined;
  };
  readonly #dir: string;
  readonly #dbPath: string;
  #buffer: unknown[][] = [];
  /** The newest frame this process recorded itself among the buffered rows, kept with them. */
  #bufferMark: LineFrameMark | undefined;
  /**
   * The newest frame the previous processes recorded themselves, as the store held it at
   * open (written in the same transaction as their rows, so a row lost with a kill -9 is
   * not in it).
   */
  readonly previousLineFrame: LineFrameMark | undefined;
  /** Windows and events the disk refused, written again with the next flush. */
  readonly #held: { table: 'windows' | 'events'; body: string }[] = [];
  /** Samples whose files are gone but whose row the full disk would not let us delete yet. */
  readonly #gone = new Set<number>();
  readonly #seq: Record<'verdicts' | 'windows' | 'events' | 'samples', number> = {
    verdicts: 0,
    windows: 0,
    events: 0,
    samples: 0,
  };
  /** Highest id handed out for sending, per kind; rows above it are not in flight. */
  readonly #cursor: Record<Exclude<StoreKind, 'samples'>, number> = {
    verdicts: 0,
    minutes: 0,
    windows: 0,
    events: 0,
  };
  readonly #evictions: EvictionCounts;
  /** What the last open repaired. */
  recovered = { orphansRemoved: 0, missingMarked: 0 };
  #imageBytes = 0;
  #diskFull = false;
  /** When the filesystem was last short of the reserve (or refused a write, or forced an eviction). */
  #pressureAtMs = Number.NEGATIVE_INFINITY;
  /** Short of the reserve: set below it, cleared at three times it. */
  #diskShort = false;
  /** The last check could not get under the limit by evicting. */
  #quotaUnmet = false;
  #failures = 0;
  #failuresAtCheck = 0;
  #checkScheduled = false;
  #lostWrites = 0;
  /** The timed flush and quota check: while frames arrive, they run right after a frame. */
  readonly #flushTimer: IdleGapTimer;
  readonly #quotaTimer: IdleGapTimer;
  #closed = false;
  readonly #stmt: {
    insertVerdict: Database.Statement;
    insertWindow: Database.Statement;
    insertEvent: Database.Statement;
    insertSample: Database.Statement;
    backlogCounts: Database.Statement;
    setMeta: Database.Statement;
  };

  private constructor(options: EdgeStoreOptions) {
    this.#o = {
      quotaBytes: options.quotaBytes,
      logger: options.logger,
      flushIntervalMs: options.flushIntervalMs ?? 200,
      flushRows: options.flushRows ?? 256,
      maxBufferedRows: options.maxBufferedRows ?? 50_000,
      quotaCheckMs: options.quotaCheckMs ?? 1000,
      diskReserveBytes: options.diskReserveBytes,
      diskSpace: options.diskSpace ?? statDiskSpace,
      diskFullHoldMs: options.diskFullHoldMs ?? 30_000,
    };
    this.#flushTimer = new IdleGapTimer({
      intervalMs: this.#o.flushIntervalMs,
      run: () => this.flush(),
    });
    // Frames count as stopped on the flush interval's terms, as for the flush.
    this.#quotaTimer = new IdleGapTimer({
      intervalMs: this.#o.quotaCheckMs,
      idleAfterMs: 2 * this.#o.flushIntervalMs,
      run: () => this.enforceQuota(),
    });
    this.#dir = options.dir;
    mkdirSync(options.dir, { recursive: true });
    this.imagesDir = join(options.dir, 'images');
    mkdirSync(this.imagesDir, { recursive: true });
    this.#dbPath = join(options.dir, 'store.sqlite');
    const db = new Database(this.#dbPath);
    this.#db = db;
    // Set before the first table exists, so deleted pages return to the file system.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 2000');
    upgradeRowIds(db);
    db.exec(SCHEMA);
    this.#pageSize = db.pragma('page_size', { simple: true }) as number;
    this.#stmt = {
      insertVerdict: db.prepare(
        `INSERT INTO verdicts (boot, seq, frame_seq, at, model_name, model_version, score, verdict, reason, latency_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertWindow: db.prepare('INSERT INTO windows (body) VALUES (?)'),
      insertEvent: db.prepare('INSERT INTO events (body) VALUES (?)'),
      insertSample: db.prepare(
        `INSERT INTO samples (boot, seq, class, state, meta, image_path, image_bytes, image_sha256, map_path, map_bytes, map_sha256)
         VALUES (?, ?, ?, 'stored', ?, ?, ?, ?, ?, ?, ?)`,
      ),
      backlogCounts: db.prepare('SELECT kind, n FROM backlog_counts'),
      setMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
    };
    const boot = Number(this.#meta('boot') ?? '-1') + 1;
    // The boot number must be kept before any record uses it, or a later start would reuse
    // its ids. On a disk that is full to the last block, sample images make the room.
    let freedForStart: { id: number; cls: SampleClass }[] = [];
    const startWrites = db.transaction(() => {
      this.#stmt.setMeta.run('boot', String(boot));
      db.exec(RECOUNT_BACKLOG);
    });
    try {
      startWrites();
    } catch (err) {
      const made = this.#freeImagesForStart();
      freedForStart = made.freed;
      if (freedForStart.length === 0 && made.orphanBytes === 0) {
        db.close();
        throw err;
      }
      startWrites();
    }
    this.boot = boot;
    this.previousLineFrame = parseLineFrameMark(this.#meta('lineFrame'));
    this.#evictions = {
      defect: 0,
      uncertain: 0,
      random: 0,
      unknown: 0,
      verdictRowsCompacted: 0,
      records: 0,
      ...(JSON.parse(this.#meta('evictions') ?? '{}') as Partial<EvictionCounts>),
    };
    if (freedForStart.length > 0) {
      const del = db.prepare('DELETE FROM samples WHERE id = ?');
      db.transaction(() => {
        for (const f of freedForStart) del.run(f.id);
      })();
      for (const f of freedForStart) this.#evictions[f.cls]++;
      this.#persistEvictions();
      this.#o.logger.warn(
        { samples: freedForStart.length },
        'disk full at start: evicted sample images to keep the store going',
      );
    }
  }

  /** The bytes of the image files the store holds: those of samples not yet uploaded. */
  #storedImageBytes(): number {
    return (
      this.#prepare(
        "SELECT COALESCE(SUM(image_bytes + map_bytes), 0) AS n FROM samples WHERE state = 'stored'",
      ).get() as { n: number }
    ).n;
  }

  /**
   * Opens the store (a new boot number each time), removes image files no
   * row points at (a write cut short by a crash), marks rows whose files are
   * gone, and starts the flush and quota timers.
   */
  static async open(options: EdgeStoreOptions): Promise<EdgeStore> {
    const store = new EdgeStore(options);
    await store.#recover();
    store.#flushTimer.start();
    store.#quotaTimer.start();
    store.enforceQuota();
    return store;
  }

  /**
   * Queues one verdict row; written with the next batch. Never throws. A row for a frame
   * this process did not take itself (a line guard's unknown handed over) is `handedOver`:
   * it does not move {@link LineFrameMark}.
   */
  recordVerdict(v: VerdictInput, options: { handedOver?: boolean } = {}): void {
    if (this.#closed) return;
    if (this.#buffer.length >= this.#o.maxBufferedRows) {
      this.#lostWrites++;
      return;
    }
    if (options.handedOver !== true)
      this.#bufferMark = { pid: process.pid, boot: this.boot, frameSeq: v.frameSeq, at: v.at };
    this.#buffer.push([
      this.boot,
      this.#seq.verdicts++,
      v.frameSeq,
      v.at,
      v.modelName,
      v.modelVersion,
      v.score,
      v.verdict,
      v.reason ?? null,
      v.latencyMs,
    ]);
    this.#flushTimer.frameHandled();
    this.#quotaTimer.frameHandled();
    if (this.#buffer.length >= this.#o.flushRows) this.#flushTimer.runAfterFrame();
  }

  /**
   * Writes the buffered verdict rows (and windows and events the disk refused before) in
   * one transaction. When the disk refuses them they stay buffered for the next flush,
   * while the quota check evicts samples to make room: verdict rows are dropped (and
   * counted) only when the buffer is full.
   */
  flush(): void {
    if (this.#closed) return;
    this.#writeHeld();
    if (this.#buffer.length === 0) return;
    const rows = this.#buffer;
    const mark = this.#bufferMark;
    this.#buffer = [];
    this.#bufferMark = undefined;
    const ok = this.#write(0, () =>
      this.#db.transaction(() => {
        for (const row of rows) this.#stmt.insertVerdict.run(...row);
        if (mark !== undefined) this.#stmt.setMeta.run('lineFrame', JSON.stringify(mark));
      })(),
    );
    if (!ok) {
      this.#buffer = rows.concat(this.#buffer);
      this.#bufferMark ??= mark;
    }
  }

  /**
   * True when the process `pid` recorded the frame (`frameSeq`, captured `at`) itself
   * before this store opened: it was among the frames that process took, in order, up to
   * {@link previousLineFrame}. False when unsure (another process wrote the mark since).
   */
  recordedBefore(pid: number, frameSeq: number, at: string): boolean {
    const mark = this.previousLineFrame;
    if (mark === undefined || mark.pid !== pid) return false;
    const atMs = Date.parse(at);
    const markMs = Date.parse(mark.at);
    return atMs < markMs || (atMs === markMs && frameSeq <= mark.frameSeq);
  }

  /** Stores a telemetry window (held in memory while the disk refuses it); returns its stable id. */
  addWindow(w: WindowInput): { boot: number; seq: number } {
    const id = { boot: this.boot, seq: this.#seq.windows++ };
    this.#addRecord('windows', JSON.stringify({ ...id, ...w }));
    return id;
  }

  /** Stores an event (held in memory while the disk refuses it); never throws. */
  addEvent(e: EventInput): void {
    if (this.#closed) return;
    const id = { boot: this.boot, seq: this.#seq.events++ };
    this.#addRecord('events', JSON.stringify({ ...id, ...e }));
  }

  #addRecord(table: 'windows' | 'events', body: string): void {
    if (this.#held.length > 0 || !this.#insertRecord(table, body)) {
      if (this.#held.length >= MAX_HELD_RECORDS) this.#lostWrites++;
      else this.#held.push({ table, body });
    }
  }

  #insertRecord(table: 'windows' | 'events', body: string): boolean {
    const insert = table === 'windows' ? this.#stmt.insertWindow : this.#stmt.insertEvent;
    return this.#write(0, () => insert.run(body));
  }

  #writeHeld(): void {
    while (this.#held.length > 0) {
      const next = this.#held[0] as { table: 'windows' | 'events'; body: string };
      if (!this.#insertRecord(next.table, next.body)) return;
      this.#held.shift();
    }
  }

  /**
   * Writes a sample's image (and anomaly map) atomically, then its row;
   * false when there is no room for it or the disk refused (counted as a
   * lost write, reported). Room is made by evicting older samples of its own
   * class or lower ones, never verdict rows or samples that rank higher.
   */
  async addSample(meta: SampleInput, image: Buffer, map?: Buffer): Promise<boolean> {
    if (this.#closed) return false;
    if (!this.#makeRoom(meta.class, image.length + (map?.length ?? 0))) {
      this.#lostWrites++;
      return false;
    }
    const seq = this.#seq.samples++;
    const base = `${this.boot}-${seq}`;
    const imagePath = `${base}.jpg`;
    const mapPath = map === undefined ? undefined : `${base}-map.png`;
    try {
      await writeFileAtomic(join(this.imagesDir, imagePath), image);
      if (map !== undefined && mapPath !== undefined)
        await writeFileAtomic(join(this.imagesDir, mapPath), map);
    } catch (err) {
      this.#onWriteFailure(1, err);
      rmSync(join(this.imagesDir, imagePath), { force: true });
      return false;
    }
    if (this.#closed) return false;
    const ok = this.#write(1, () =>
      this.#stmt.insertSample.run(
        this.boot,
        seq,
        meta.class,
        JSON.stringify(meta),
        imagePath,
        image.length,
        sha256(image),
        mapPath ?? null,
        map?.length ?? 0,
        map === undefined ? null : sha256(map),
      ),
    );
    if (ok) this.#imageBytes += image.length + (map?.length ?? 0);
    this.enforceQuota();
    return ok;
  }

  /**
   * Samples whose files still wait for an upload, oldest first. Not by class: a line
   * that keeps finding defects would starve the older random and uncertain samples
   * for ever (seen after an outage on a busy machine). Class decides only eviction.
   */
  pendingUploads(limit: number, exclude: ReadonlySet<number> = new Set()): StoredSample[] {
    if (this.#closed) return [];
    const changes = this.#changes();
    if (this.#emptyAt.get('pendingUploads') === changes) return [];
    const rows = this.#prepare(
      "SELECT * FROM samples WHERE state = 'stored' ORDER BY id LIMIT ?",
    ).all(limit + exclude.size + this.#gone.size) as SampleRow[];
    if (rows.length === 0) this.#emptyAt.set('pendingUploads', changes);
    return rows
      .filter((r) => !exclude.has(r.id) && !this.#gone.has(r.id))
      .slice(0, limit)
      .map((r) => ({
        ...(JSON.parse(r.meta) as SampleInput),
        id: r.id,
        boot: r.boot,
        seq: r.seq,
        imagePath: join(this.imagesDir, r.image_path),
        imageBytes: r.image_bytes,
        imageSha256: r.image_sha256,
        mapPath: r.map_path === null ? undefined : join(this.imagesDir, r.map_path),
        mapBytes: r.map_bytes,
        mapSha256: r.map_sha256 ?? undefined,
      }));
  }

  /**
   * Records that samples' files are in object storage under these keys, then removes the
   * local copies: what is left to send is each one's index record, which is never evicted for
   * room (an index handed out once may be in the cloud already, so evicting it could count a
   * delivered sample as lost). The marks are committed with a full sync before any file goes,
   * so a power loss cannot leave a sample whose files are gone but whose mark is not.
   */
  markUploaded(marks: readonly UploadMark[]): void {
    if (this.#closed || marks.length === 0) return;
    try {
      const select = this.#prepare("SELECT * FROM samples WHERE id = ? AND state = 'stored'");
      const rows = marks.flatMap((m) => {
        const row = select.get(m.id) as SampleRow | undefined;
        // A sample evicted meanwhile (its row maybe not yet deleted) is counted as evicted.
        return row === undefined || this.#gone.has(m.id) ? [] : [{ row, mark: m }];
      });
      if (rows.length === 0) return;
      const update = this.#prepare(
        "UPDATE samples SET state = 'uploaded', object_key = ?, map_key = ? WHERE id = ? AND state = 'stored'",
      );
      const ok = this.#write(0, () => {
        this.#db.pragma('synchronous = FULL');
        try {
          this.#db.transaction(() => {
            for (const { mark } of rows) update.run(mark.objectKey, mark.mapKey ?? null, mark.id);
          })();
        } finally {
          this.#db.pragma('synchronous = NORMAL');
        }
      });
      if (ok) for (const { row } of rows) this.#removeFiles(row);
    } catch (err) {
      // A file that could not be removed stays until the next start's orphan sweep.
      this.#o.logger.warn({ err: describeError(err) }, 'uploaded samples not all marked');
    }
  }

  /**
   * The oldest records of a kind not yet handed out for sending (at most
   * `limit`); undefined when there are none. `rewind()` hands them out again.
   */
  take(kind: 'verdicts', limit: number): TakenBatch<VerdictRecord> | undefined;
  take(kind: 'minutes', limit: number): TakenBatch<VerdictMinute> | undefined;
  take(kind: 'windows', limit: number): TakenBatch<TelemetryWindow> | undefined;
  take(kind: 'events', limit: number): TakenBatch<EventRecord> | undefined;
  take(kind: 'samples', limit: number): TakenBatch<SampleRecord> | undefined;
  take(kind: StoreKind, limit: number): TakenBatch<unknown> | undefined {
    if (this.#closed) return undefined;
    const changes = this.#changes();
    if (this.#emptyAt.get(kind) === changes) return undefined;
    if (kind === 'samples') return this.#takeSamples(limit, changes);
    const after = this.#cursor[kind];
    const rows = this.#prepare(`SELECT * FROM ${kind} WHERE id > ? ORDER BY id LIMIT ?`).all(
      after,
      limit,
    ) as { id: number }[];
    if (rows.length === 0) {
      this.#emptyAt.set(kind, changes);
      return undefined;
    }
    const firstId = rows[0]?.id as number;
    const lastId = rows.at(-1)?.id as number;
    this.#cursor[kind] = lastId;
    return { kind, firstId, lastId, records: rows.map((r) => toRecord(kind, r)) };
  }

  /** The broker acknowledged a batch: its records are deleted (a sample's files went at upload). */
  ack(kind: StoreKind, firstId: number, lastId: number): void {
    if (this.#closed) return;
    if (kind !== 'samples') {
      this.#write(0, () =>
        this.#prepare(`DELETE FROM ${kind} WHERE id BETWEEN ? AND ?`).run(firstId, lastId),
      );
      return;
    }
    // Only the batch's index rows: a sample in the range that is not in flight (stored, back to
    // `uploaded` after a rewind, missing) stays. No file goes here: an indexed sample's files
    // were removed when its upload was marked, and any a stop left behind by the next start.
    const ids = this.#prepare(
      "SELECT id FROM samples WHERE id BETWEEN ? AND ? AND state = 'indexing'",
      { pluck: true },
    ).all(firstId, lastId) as number[];
    this.#deleteSampleRows(ids);
  }

  /** Forgets what was handed out (the link dropped): unacknowledged records are sent again. */
  rewind(): void {
    if (this.#closed) return;
    this.#emptyAt.clear();
    this.#cursor.verdicts = 0;
    this.#cursor.minutes = 0;
    this.#cursor.windows = 0;
    this.#cursor.events = 0;
    this.#write(0, () =>
      this.#prepare("UPDATE samples SET state = 'uploaded' WHERE state = 'indexing'").run(),
    );
  }

  /** Records waiting for the broker's acknowledgement, by kind. */
  backlog(): StoreState['backlog'] {
    if (this.#closed) return { verdicts: 0, windows: 0, events: 0, samples: 0 };
    const kept = new Map(
      (this.#stmt.backlogCounts.all() as { kind: string; n: number }[]).map((r) => [r.kind, r.n]),
    );
    const n = (kind: (typeof BACKLOG_KINDS)[number]) => kept.get(kind) ?? 0;
    return {
      verdicts: n('verdicts') + this.#buffer.length,
      windows: n('windows'),
      events: n('events'),
      samples: n('samples'),
    };
  }

  /** Bytes used by the database's live pages, its WAL and the image folder. */
  usedBytes(): number {
    if (this.#closed) return this.#imageBytes;
    const pages = this.#prepare('PRAGMA page_count', { pluck: true }).get() as number;
    const free = this.#prepare('PRAGMA freelist_count', { pluck: true }).get() as number;
    let wal = 0;
    try {
      wal = statSync(`${this.#dbPath}-wal`).size;
    } catch {
      // No WAL file yet.
    }
    return (pages - free) * this.#pageSize + wal + this.#imageBytes;
  }

  /** Bytes the store's files take on disk right now (database, WAL, images). */
  diskBytes(): number {
    let total = this.#imageBytes;
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        total += statSync(`${this.#dbPath}${suffix}`).size;
      } catch {
        // Not there.
      }
    }
    return total;
  }

  /** The store's state for telemetry and the reported state. */
  state(): StoreState {
    return {
      bytes: this.usedBytes(),
      quotaBytes: this.#o.quotaBytes,
      imageBytes: this.#imageBytes,
      diskFull: this.#diskFull,
      evictions: { ...this.#evictions },
      backlog: this.backlog(),
      lostWrites: this.#lostWrites,
    };
  }

  /**
   * Keeps the store under its quota, and its filesystem above the free-space
   * reserve, by evicting in priority order: random, then uncertain samples;
   * then the oldest unsent verdict rows are compacted into per-minute counts;
   * then unknown, then defect samples; then the oldest windows, events and
   * minute counts. Oldest first within each. Every eviction is counted. The
   * store reports `diskFull` while the filesystem is short of the reserve, a
   * write failed, or the limit could not be met.
   */
  enforceQuota(): void {
    if (this.#closed) return;
    this.#checkScheduled = false;
    try {
      this.#deleteGoneRows();
      const failed = this.#failures !== this.#failuresAtCheck;
      this.#failuresAtCheck = this.#failures;
      const l = this.#limits();
      // Short of the reserve: full. It stays full until three times the reserve is free, for
      // the hold time: room for a moment (a WAL checkpoint) is not room.
      if (failed || l.freeBytes < l.reserveBytes) this.#diskShort = true;
      else if (l.freeBytes >= 3 * l.reserveBytes) this.#diskShort = false;
      if (this.#diskShort) this.#pressureAtMs = performance.now();
      if (l.usedBytes > l.limitBytes) {
        const steps: (() => boolean)[] = [
          () => this.#evictSamples('random'),
          () => this.#evictSamples('uncertain'),
          () => this.#compactVerdicts(),
          () => this.#evictSamples('unknown'),
          () => this.#evictSamples('defect'),
          () => this.#evictRecords('windows'),
          () => this.#evictRecords('events'),
          () => this.#evictRecords('minutes'),
        ];
        for (const step of steps) {
          while (this.usedBytes() > l.targetBytes) {
            if (!step()) break;
            this.#vacuum();
          }
          if (this.usedBytes() <= l.targetBytes) break;
        }
        this.#persistEvictions();
        // What remains is what cannot be evicted: the disk is full for this quota.
        this.#quotaUnmet = this.usedBytes() > l.limitBytes;
      } else this.#quotaUnmet = false;
      this.#setDiskFull(this.#diskPressure() || this.#quotaUnmet);
    } catch (err) {
      this.#onWriteFailure(0, err, false);
    }
  }

  /** The quota, or less when the filesystem would go below its reserve. */
  #limits(): Limits {
    const quota = this.#o.quotaBytes;
    const usedBytes = this.usedBytes();
    let space: DiskSpace | undefined;
    try {
      space = this.#o.diskSpace(this.#dir);
    } catch {
      // No statfs here: the quota alone decides.
    }
    if (space === undefined)
      return {
        usedBytes,
        limitBytes: quota,
        targetBytes: quota * LOW_WATER,
        freeBytes: Number.POSITIVE_INFINITY,
        reserveBytes: 0,
      };
    const reserveBytes =
      this.#o.diskReserveBytes ??
      Math.min(64 * 1024 * 1024, Math.max(1024 * 1024, Math.round(space.totalBytes * 0.05)));
    const diskLimit = usedBytes + space.freeBytes - reserveBytes;
    return {
      usedBytes,
      limitBytes: Math.min(quota, diskLimit),
      // Evicting down to twice the reserve free, so a full disk does not evict at every sample.
      targetBytes: Math.min(quota * LOW_WATER, diskLimit - reserveBytes),
      freeBytes: space.freeBytes,
      reserveBytes,
    };
  }

  /**
   * Makes room for a new sample by evicting older samples of its class or of
   * classes evicted before it; false when that is not enough.
   */
  #makeRoom(cls: SampleClass, bytes: number): boolean {
    try {
      const l = this.#limits();
      const fits = () => this.usedBytes() + bytes <= l.limitBytes;
      if (fits()) return true;
      // The disk, not the quota, is what is short: that is the reported full disk.
      if (l.limitBytes < this.#o.quotaBytes) {
        this.#diskShort = true;
        this.#pressureAtMs = performance.now();
        this.#setDiskFull(true);
      }
      let evicted = false;
      for (const c of CLASS_ORDER.slice(0, CLASS_ORDER.indexOf(cls) + 1)) {
        while (!fits() && this.#evictSamples(c)) evicted = true;
        if (fits()) break;
      }
      if (evicted) {
        this.#vacuum();
        this.#persistEvictions();
      }
      if (!fits()) {
        this.#setDiskFull(true);
        return false;
      }
      return true;
    } catch (err) {
      this.#onWriteFailure(0, err);
      return false;
    }
  }

  /** The disk was short within the hold time. */
  #diskPressure(): boolean {
    return this.#diskShort || performance.now() - this.#pressureAtMs < this.#o.diskFullHoldMs;
  }

  #persistEvictions(): void {
    try {
      this.#stmt.setMeta.run('evictions', JSON.stringify(this.#evictions));
    } catch (err) {
      // Kept in memory and written with the next check that has room.
      this.#o.logger.debug({ err: describeError(err) }, 'eviction counts not persisted');
    }
  }

  /** Flushes buffered rows, stops the timers and closes the database; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#flushTimer.close();
    this.#quotaTimer.close();
    this.flush();
    this.#closed = true;
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      this.#o.logger.warn({ err: describeError(err) }, 'store checkpoint failed');
    }
    this.#db.close();
  }

  #takeSamples(limit: number, changes: number): TakenBatch<SampleRecord> | undefined {
    const found = this.#prepare(
      "SELECT * FROM samples WHERE state = 'uploaded' ORDER BY id LIMIT ?",
    ).all(limit + this.#gone.size) as SampleRow[];
    if (found.length === 0) this.#emptyAt.set('samples', changes);
    const rows = found.filter((r) => !this.#gone.has(r.id)).slice(0, limit);
    if (rows.length === 0) return undefined;
    const firstId = rows[0]?.id as number;
    const lastId = rows.at(-1)?.id as number;
    this.#prepare(
      "UPDATE samples SET state = 'indexing' WHERE id BETWEEN ? AND ? AND state = 'uploaded'",
    ).run(firstId, lastId);
    return {
      kind: 'samples',
      firstId,
      lastId,
      records: rows.map((r) => {
        const meta = JSON.parse(r.meta) as SampleInput;
        return {
          boot: r.boot,
          seq: r.seq,
          ...meta,
          objectKey: r.object_key as string,
          ...(r.map_key === null ? {} : { mapKey: r.map_key }),
          bytes: r.image_bytes,
          sha256: r.image_sha256,
        };
      }),
    };
  }

  #evictSamples(cls: SampleClass): boolean {
    const rows = (
      this.#prepare(
        "SELECT * FROM samples WHERE class = ? AND state = 'stored' ORDER BY id LIMIT ?",
      ).all(cls, 1 + this.#gone.size) as SampleRow[]
    )
      .filter((r) => !this.#gone.has(r.id))
      .slice(0, 1);
    if (rows.length === 0) return false;
    this.#deleteSamples(rows);
    this.#evictions[cls] += rows.length;
    return true;
  }

  /**
   * Removes samples' files, then their rows. The files go first: on a disk full to the last
   * block they are what makes room for the delete.
   */
  #deleteSamples(rows: SampleRow[]): void {
    for (const r of rows) this.#removeFiles(r);
    this.#deleteSampleRows(rows.map((r) => r.id));
  }

  /** Deletes sample rows; a row the disk refuses is kept out of every query and deleted by a later check. */
  #deleteSampleRows(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const del = this.#prepare('DELETE FROM samples WHERE id = ?');
    try {
      this.#db.transaction(() => {
        for (const id of ids) del.run(id);
      })();
    } catch (err) {
      for (const id of ids) this.#gone.add(id);
      this.#onWriteFailure(0, err);
    }
  }

  /** Removes a sample's local files and their bytes from the count; only a `stored` sample still has them. */
  #removeFiles(r: SampleRow): void {
    if (r.state !== 'stored') return;
    this.#unlinkFiles(r);
    this.#imageBytes -= r.image_bytes + r.map_bytes;
  }

  /** Removes a sample's image and map (if any) from the image folder, nothing else. */
  #unlinkFiles(r: Pick<SampleRow, 'image_path' | 'map_path'>): void {
    rmSync(join(this.imagesDir, r.image_path), { force: true });
    if (r.map_path !== null) rmSync(join(this.imagesDir, r.map_path), { force: true });
  }

  #deleteGoneRows(): void {
    if (this.#gone.size === 0) return;
    const ids = [...this.#gone];
    const del = this.#prepare('DELETE FROM samples WHERE id = ?');
    this.#db.transaction(() => {
      for (const id of ids) del.run(id);
    })();
    for (const id of ids) this.#gone.delete(id);
  }

  /**
   * Removes image files of the lowest-ranked samples (random first, oldest first) until a
   * reserve's worth is free; their rows are deleted once the store can write again. Returns
   * the samples freed and the bytes of files no stored sample owned (removed first).
   */
  #freeImagesForStart(): { freed: { id: number; cls: SampleClass }[]; orphanBytes: number } {
    const rows = this.#prepare(
      "SELECT * FROM samples WHERE state = 'stored' ORDER BY id",
    ).all() as SampleRow[];
    rows.sort((a, b) => CLASS_ORDER.indexOf(a.class) - CLASS_ORDER.indexOf(b.class));
    const wanted = this.#o.diskReserveBytes ?? 1024 * 1024;
    const freed: { id: number; cls: SampleClass }[] = [];
    // Files no stored sample owns go first: nothing is lost with them.
    const orphanBytes = this.#removeUnownedFiles(rows, readdirSync(this.imagesDir)).bytes;
    let bytes = orphanBytes;
    for (const r of rows) {
      if (bytes >= wanted) break;
      // Not #removeFiles: the image bytes are not counted yet (recovery at open counts those
      // of the rows left), so there is nothing to subtract them from.
      this.#unlinkFiles(r);
      bytes += r.image_bytes + r.map_bytes;
      freed.push({ id: r.id, cls: r.class });
    }
    return { freed, orphanBytes };
  }

  /**
   * Removes the files of `files` (the image folder's names) that no sample of `rows` owns. Only
   * a `stored` sample owns its files: an uploaded one's left by a stop between its upload mark
   * and their removal, like a write cut short, are orphans, and nothing is lost with them.
   * Returns how many files went and their bytes. The folder is not synced here: the start on a
   * full disk (in the constructor) cannot wait for it, and recovery at open syncs it.
   */
  #removeUnownedFiles(
    rows: readonly Pick<SampleRow, 'state' | 'image_path' | 'map_path'>[],
    files: Iterable<string>,
  ): { files: number; bytes: number } {
    const owned = new Set(
      rows.flatMap((r) => {
        if (r.state !== 'stored') return [];
        return r.map_path === null ? [r.image_path] : [r.image_path, r.map_path];
      }),
    );
    let removed = 0;
    let bytes = 0;
    for (const f of files) {
      if (owned.has(f)) continue;
      const path = join(this.imagesDir, f);
      bytes += statSync(path, { throwIfNoEntry: false })?.size ?? 0;
      rmSync(path, { force: true });
      removed++;
    }
    return { files: removed, bytes };
  }

  /** Compacts the oldest verdict rows that are not in flight into per-minute counts. */
  #compactVerdicts(): boolean {
    const rows = this.#prepare('SELECT * FROM verdicts WHERE id > ? ORDER BY id LIMIT 20000').all(
      this.#cursor.verdicts,
    ) as VerdictRow[];
    if (rows.length === 0) return false;
    const groups = new Map<string, VerdictMinute>();
    for (const r of rows) {
      const minute = new Date(Math.floor(Date.parse(r.at) / 60_000) * 60_000).toISOString();
      const key = `${minute}|${r.model_name}|${r.model_version}`;
      let g = groups.get(key);
      if (g === undefined) {
        g = {
          boot: r.boot,
          seq: r.seq,
          minute,
          modelName: r.model_name,
          modelVersion: r.model_version,
          good: 0,
          defect: 0,
          unknown: 0,
        };
        groups.set(key, g);
      }
      g[r.verdict]++;
    }
    const insert = this.#prepare(
      `INSERT INTO minutes (boot, seq, minute, model_name, model_version, good, defect, unknown)
       VALUES (@boot, @seq, @minute, @modelName, @modelVersion, @good, @defect, @unknown)`,
    );
    this.#db.transaction(() => {
      for (const g of groups.values()) insert.run(g);
      this.#prepare('DELETE FROM verdicts WHERE id BETWEEN ? AND ?').run(
        rows[0]?.id,
        rows.at(-1)?.id,
      );
    })();
    this.#evictions.verdictRowsCompacted += rows.length;
    this.#o.logger.warn(
      { rows: rows.length, minutes: groups.size },
      'disk quota: compacted verdict rows into per-minute counts',
    );
    return true;
  }

  #evictRecords(kind: 'windows' | 'events' | 'minutes'): boolean {
    const after = this.#cursor[kind];
    const result = this.#prepare(
      `DELETE FROM ${kind} WHERE id IN (SELECT id FROM ${kind} WHERE id > ? ORDER BY id LIMIT 256)`,
    ).run(after);
    this.#evictions.records += result.changes;
    return result.changes > 0;
  }

  #vacuum(): void {
    try {
      this.#db.pragma('incremental_vacuum');
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      // A full disk may refuse the checkpoint; the next check tries again.
      this.#o.logger.debug({ err: describeError(err) }, 'store vacuum failed');
    }
  }

  /** How many rows this connection has inserted, updated or deleted since it opened. */
  #changes(): number {
    return this.#prepare('SELECT total_changes()', { pluck: true }).get() as number;
  }

  /** The statement for `sql`, prepared at its first use and kept while the store is open. */
  #prepare(sql: string, o: { pluck?: boolean } = {}): Database.Statement {
    const key = o.pluck ? `pluck:${sql}` : sql;
    let statement = this.#prepared.get(key);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (o.pluck) statement.pluck();
      this.#prepared.set(key, statement);
    }
    return statement;
  }

  /** Runs a write; a failure is counted and reported, never thrown. */
  #write(records: number, fn: () => unknown): boolean {
    if (this.#closed) return false;
    try {
      fn();
      return true;
    } catch (err) {
      this.#onWriteFailure(records, err);
      return false;
    }
  }

  #onWriteFailure(records: number, err: unknown, check = true): void {
    this.#lostWrites += records;
    this.#failures++;
    this.#setDiskFull(true, err);
    // Make room now rather than at the next periodic check.
    if (check && !this.#checkScheduled && !this.#closed) {
      this.#checkScheduled = true;
      setImmediate(() => this.enforceQuota());
    }
  }

  #setDiskFull(full: boolean, err?: unknown): void {
    if (full === this.#diskFull) return;
    this.#diskFull = full;
    if (full)
      this.#o.logger.error(
        { err: err === undefined ? undefined : describeError(err), quotaBytes: this.#o.quotaBytes },
        'store full: evicting samples; records that find no room are counted as lost writes',
      );
    else this.#o.logger.info('store has room again');
  }

  async #recover(): Promise<void> {
    const rows = this.#prepare('SELECT id, image_path, map_path, state FROM samples').all() as Pick<
      SampleRow,
      'id' | 'image_path' | 'map_path' | 'state'
    >[];
    const files = new Set(readdirSync(this.imagesDir));
    const missing: number[] = [];
    // Only a sample not yet uploaded has local files.
    for (const r of rows) {
      if (r.state !== 'stored') continue;
      const lost = !files.has(r.image_path) || (r.map_path !== null && !files.has(r.map_path));
      if (lost) missing.push(r.id);
    }
    // The sweep runs before rows are marked missing: a missing row's file that is still there
    // (an image whose map was lost) goes at the next start.
    const removed = this.#removeUnownedFiles(rows, files).files;
    if (removed > 0) await syncDir(this.imagesDir);
    if (missing.length > 0) {
      const mark = this.#prepare("UPDATE samples SET state = 'missing' WHERE id = ?");
      this.#db.transaction(() => {
        for (const id of missing) mark.run(id);
      })();
    }
    // In-flight sample indexes of the previous run were never acknowledged.
    this.#prepare("UPDATE samples SET state = 'uploaded' WHERE state = 'indexing'").run();
    // Rows marked missing hold no files.
    this.#imageBytes = this.#storedImageBytes();
    if (removed > 0 || missing.length > 0)
      this.#o.logger.warn(
        { orphansRemoved: removed, missingMarked: missing.length },
        'store repaired after an unclean stop',
      );
    this.recovered = { orphansRemoved: removed, missingMarked: missing.length };
  }

  #meta(key: string): string | undefined {
    const row = this.#prepare('SELECT value FROM meta WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row?.value;
  }
}

function parseLineFrameMark(raw: string | undefined): LineFrameMark | undefined {
  if (raw === undefined) return undefined;
  try {
    const m = JSON.parse(raw) as Partial<LineFrameMark>;
    return Number.isInteger(m.pid) &&
      Number.isInteger(m.boot) &&
      Number.isInteger(m.frameSeq) &&
      typeof m.at === 'string' &&
      Number.isFinite(Date.parse(m.at))
      ? (m as LineFrameMark)
      : undefined;
  } catch {
    // A mark that does not parse is no mark: the next worker then records every unknown.
    return undefined;
  }
}

function toRecord(kind: Exclude<StoreKind, 'samples'>, row: { id: number }): unknown {
  switch (kind) {
    case 'windows':
    case 'events':
      return JSON.parse((row as unknown as { body: string }).body);
    case 'verdicts': {
      const r = row as VerdictRow;
      return {
        boot: r.boot,
        seq: r.seq,
        frameSeq: r.frame_seq,
        at: r.at,
        modelName: r.model_name,
        modelVersion: r.model_version,
        score: r.score,
        verdict: r.verdict,
        ...(r.reason === null ? {} : { reason: r.reason }),
        latencyMs: r.latency_ms,
      } satisfies VerdictRecord;
    }
    case 'minutes': {
      const r = row as unknown as {
        boot: number;
        seq: number;
        minute: string;
        model_name: string | null;
        model_version: string | null;
        good: number;
        defect: number;
        unknown: number;
      };
      return {
        boot: r.boot,
        seq: r.seq,
        minute: r.minute,
        modelName: r.model_name,
        modelVersion: r.model_version,
        good: r.good,
        defect: r.defect,
        unknown: r.unknown,
      } satisfies VerdictMinute;
    }
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
