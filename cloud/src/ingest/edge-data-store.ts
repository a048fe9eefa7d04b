import type Database from 'better-sqlite3';
import { openDatabase } from '../sqlite/open-database.ts';
import type {
  EventRecord,
  SampleRecord,
  TelemetryWindow,
  VerdictMinute,
  VerdictRecord,
} from '@linesight/protocol';

// Each entry upgrades the schema by one version; never edit a shipped entry, append.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE verdicts (
     device_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
     frame_seq INTEGER NOT NULL, at_ms INTEGER NOT NULL, model_name TEXT, model_version TEXT,
     score REAL, verdict TEXT NOT NULL, reason TEXT, latency_ms REAL NOT NULL,
     PRIMARY KEY (device_id, boot, seq)) WITHOUT ROWID;
   CREATE INDEX verdicts_device_at ON verdicts(device_id, at_ms);
   CREATE INDEX verdicts_model_at ON verdicts(model_name, model_version, at_ms);
   CREATE INDEX verdicts_at ON verdicts(at_ms);
   CREATE TABLE verdict_minutes (
     device_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
     minute_ms INTEGER NOT NULL, model_name TEXT, model_version TEXT,
     good INTEGER NOT NULL, defect INTEGER NOT NULL, unknown INTEGER NOT NULL,
     PRIMARY KEY (device_id, boot, seq)) WITHOUT ROWID;
   CREATE INDEX verdict_minutes_at ON verdict_minutes(minute_ms);
   CREATE TABLE windows (
     device_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
     start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, model_name TEXT, model_version TEXT,
     body TEXT NOT NULL,
     PRIMARY KEY (device_id, boot, seq)) WITHOUT ROWID;
   CREATE INDEX windows_device_end ON windows(device_id, end_ms);
   CREATE INDEX windows_end ON windows(end_ms);
   CREATE TABLE events (
     device_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
     at_ms INTEGER NOT NULL, level TEXT NOT NULL, type TEXT NOT NULL, message TEXT NOT NULL,
     code TEXT,
     PRIMARY KEY (device_id, boot, seq)) WITHOUT ROWID;
   CREATE INDEX events_device_at ON events(device_id, at_ms);
   CREATE INDEX events_at ON events(at_ms);
   CREATE TABLE samples (
     device_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
     at_ms INTEGER NOT NULL, frame_seq INTEGER NOT NULL, class TEXT NOT NULL,
     model_name TEXT, model_version TEXT, score REAL, verdict TEXT NOT NULL, reason TEXT,
     object_key TEXT NOT NULL, map_key TEXT, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
     PRIMARY KEY (device_id, boot, seq)) WITHOUT ROWID;
   CREATE INDEX samples_device_at ON samples(device_id, at_ms);
   CREATE INDEX samples_at ON samples(at_ms);`,
  // The orphan sweep asks, a page of stored objects at a time, which keys some sample names.
  `CREATE INDEX samples_object ON samples(object_key);
   CREATE INDEX samples_map ON samples(map_key) WHERE map_key IS NOT NULL;`,
];

// Keys per lookup statement: well under SQLite's bound-parameter limit (32,766), two lists each.
const KEYS_PER_LOOKUP = 500;

/** The tables edge data lands in, each with a retention setting. */
export type EdgeTable = 'verdicts' | 'verdict_minutes' | 'windows' | 'events' | 'samples';

/** How many records of a write were new and how many were already stored (replays). */
export interface WriteResult {
  stored: number;
  duplicates: number;
}

/** One row of a verdict-count query. */
export interface VerdictCountRow {
  deviceId: string;
  modelName: string | null;
  modelVersion: string | null;
  bucketStart: string;
  good: number;
  defect: number;
  unknown: number;
}

/** A filter on device, model version and time. */
export interface EdgeQuery {
  deviceId?: string;
  modelName?: string;
  modelVersion?: string;
  fromMs?: number;
  toMs?: number;
  limit?: number;
}

/** A stored sample as the index lists it. */
export interface SampleIndexEntry extends SampleRecord {
  deviceId: string;
  id: string;
}

/** A pending write: the records of one kind from one device. */
export type EdgeWrite =
  | { kind: 'verdicts'; deviceId: string; records: VerdictRecord[] }
  | { kind: 'minutes'; deviceId: string; records: VerdictMinute[] }
  | { kind: 'windows'; deviceId: string; records: TelemetryWindow[] }
  | { kind: 'events'; deviceId: string; records: EventRecord[] }
  | { kind: 'samples'; deviceId: string; records: SampleRecord[] };

/**
 * The cloud's edge-data tables in their own SQLite file (WAL), apart from
 * the registry so ingest never waits on registry writes. Every record is
 * stored once by (device, boot, seq): INSERT OR IGNORE makes replays no-ops.
 */
export class EdgeDataStore {
  readonly #db: Database.Database;
  readonly #insert: Record<EdgeWrite['kind'], Database.Statement>;

  constructor(path: string) {
    const db = openDatabase(path, { migrations: MIGRATIONS });
    this.#db = db;
    this.#insert = {
      verdicts: db.prepare(
        `INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      minutes: db.prepare(
        `INSERT OR IGNORE INTO verdict_minutes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      windows: db.prepare(`INSERT OR IGNORE INTO windows VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      events: db.prepare(`INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      samples: db.prepare(
        `INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    };
  }

  /** Writes many batches in one transaction; counts new records and replays. */
  write(writes: readonly EdgeWrite[]): WriteResult {
    const result: WriteResult = { stored: 0, duplicates: 0 };
    this.#db.transaction(() => {
      for (const w of writes) {
        const stmt = this.#insert[w.kind];
        for (const r of w.records) {
          const changes = stmt.run(...rowOf(w.kind, w.deviceId, r)).changes;
          if (changes > 0) result.stored++;
          else result.duplicates++;
        }
      }
    })();
    return result;
  }

  /** Verdict-log records, oldest first. */
  verdicts(q: EdgeQuery): (VerdictRecord & { deviceId: string })[] {
    const { where, params } = filter(q, 'at_ms');
    const rows = this.#db
      .prepare(`SELECT * FROM verdicts ${where} ORDER BY at_ms, device_id, boot, seq LIMIT ?`)
      .all(...params, q.limit ?? 1000) as Record<string, unknown>[];
    return rows.map((r) => ({
      deviceId: r.device_id as string,
      boot: r.boot as number,
      seq: r.seq as number,
      frameSeq: r.frame_seq as number,
      at: new Date(r.at_ms as number).toISOString(),
      modelName: r.model_name as string | null,
      modelVersion: r.model_version as string | null,
      score: r.score as number | null,
      verdict: r.verdict as VerdictRecord['verdict'],
      ...(r.reason === null ? {} : { reason: r.reason as string }),
      latencyMs: r.latency_ms as number,
    }));
  }

  /**
   * Verdict counts per device, model version and time bucket, over the
   * verdict log and the per-minute counts devices compacted under quota.
   */
  verdictCounts(q: EdgeQuery & { bucketSec: number }): VerdictCountRow[] {
    const bucketMs = Math.max(60, Math.floor(q.bucketSec)) * 1000;
    const a = filter(q, 'at_ms');
    const b = filter(q, 'minute_ms');
    const rows = this.#db
      .prepare(
        `SELECT device_id, model_name, model_version, bucket,
                SUM(good) AS good, SUM(defect) AS defect, SUM(unknown) AS unknown FROM (
           SELECT device_id, model_name, model_version, (at_ms / ${bucketMs}) * ${bucketMs} AS bucket,
                  verdict = 'good' AS good, verdict = 'defect' AS defect, verdict = 'unknown' AS unknown
             FROM verdicts ${a.where}
           UNION ALL
           SELECT device_id, model_name, model_version, (minute_ms / ${bucketMs}) * ${bucketMs} AS bucket,
                  good, defect, unknown
             FROM verdict_minutes ${b.where})
         GROUP BY device_id, model_name, model_version, bucket
         ORDER BY bucket, device_id, model_name, model_version
         LIMIT ?`,
      )
      .all(...a.params, ...b.params, q.limit ?? 10_000) as Record<string, unknown>[];
    return rows.map((r) => ({
      deviceId: r.device_id as string,
      modelName: r.model_name as string | null,
      modelVersion: r.model_version as string | null,
      bucketStart: new Date(r.bucket as number).toISOString(),
      good: r.good as number,
      defect: r.defect as number,
      unknown: r.unknown as number,
    }));
  }

  /** Telemetry windows, oldest first. */
  windows(q: EdgeQuery): (TelemetryWindow & { deviceId: string })[] {
    const { where, params } = filter(q, 'end_ms');
    const rows = this.#db
      .prepare(`SELECT device_id, body FROM windows ${where} ORDER BY end_ms, device_id LIMIT ?`)
      .all(...params, q.limit ?? 1000) as { device_id: string; body: string }[];
    return rows.map((r) => ({ deviceId: r.device_id, ...(JSON.parse(r.body) as TelemetryWindow) }));
  }

  /** Events, oldest first (newest first with `newestFirst`). */
  events(q: EdgeQuery & { newestFirst?: boolean }): (EventRecord & { deviceId: string })[] {
    const { where, params } = filter(
      { ...q, modelName: undefined, modelVersion: undefined },
      'at_ms',
    );
    // Newest first keeps the newest when the limit cuts (a timeline); oldest first pages forward.
    const order = q.newestFirst
      ? 'at_ms DESC, device_id, boot DESC, seq DESC'
      : 'at_ms, device_id, boot, seq';
    const rows = this.#db
      .prepare(`SELECT * FROM events ${where} ORDER BY ${order} LIMIT ?`)
      .all(...params, q.limit ?? 1000) as Record<string, unknown>[];
    return rows.map((r) => ({
      deviceId: r.device_id as string,
      boot: r.boot as number,
      seq: r.seq as number,
      at: new Date(r.at_ms as number).toISOString(),
      level: r.level as EventRecord['level'],
      type: r.type as string,
      message: r.message as string,
      ...(r.code === null ? {} : { code: r.code as string }),
    }));
  }

  /** The sample index, newest first. */
  samples(q: EdgeQuery & { class?: string }): SampleIndexEntry[] {
    const { where, params } = filter(q, 'at_ms', [['class = ?', q.class]]);
    const rows = this.#db
      .prepare(`SELECT * FROM samples ${where} ORDER BY at_ms DESC LIMIT ?`)
      .all(...params, q.limit ?? 100) as Record<string, unknown>[];
    return rows.map(sampleOf);
  }

  /** One sample by its id `<boot>-<seq>` on a device. */
  sample(deviceId: string, boot: number, seq: number): SampleIndexEntry | undefined {
    const row = this.#db
      .prepare('SELECT * FROM samples WHERE device_id = ? AND boot = ? AND seq = ?')
      .get(deviceId, boot, seq) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : sampleOf(row);
  }

  /** Row counts per table (for stats and tests). */
  counts(): Record<EdgeTable, number> {
    const n = (t: EdgeTable) =>
      (this.#db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
    return {
      verdicts: n('verdicts'),
      verdict_minutes: n('verdict_minutes'),
      windows: n('windows'),
      events: n('events'),
      samples: n('samples'),
    };
  }

  /**
   * Object keys (images and maps) of every sample older than `beforeMs`, a
   * page of at most `pageSize` samples at a time in key order, so a caller may
   * await between pages (each page is its own query).
   */
  *sampleKeysOlderThan(beforeMs: number, pageSize = 5000): Generator<string[]> {
    const page = this.#db.prepare(
      `SELECT device_id, boot, seq, object_key, map_key FROM samples
        WHERE at_ms < ? AND (device_id, boot, seq) > (?, ?, ?)
        ORDER BY device_id, boot, seq LIMIT ?`,
    );
    let after: [string, number, number] = ['', -1, -1];
    for (;;) {
      const rows = page.all(beforeMs, ...after, pageSize) as {
        device_id: string;
        boot: number;
        seq: number;
        object_key: string;
        map_key: string | null;
      }[];
      const last = rows.at(-1);
      if (last === undefined) return;
      yield rows.flatMap((r) => (r.map_key === null ? [r.object_key] : [r.object_key, r.map_key]));
      if (rows.length < pageSize) return;
      after = [last.device_id, last.boot, last.seq];
    }
  }

  /**
   * Which of `keys` some sample in the index names, as its image or its
   * anomaly map: one indexed lookup per 500 keys.
   */
  indexedObjects(keys: readonly string[]): Set<string> {
    const found = new Set<string>();
    for (let at = 0; at < keys.length; at += KEYS_PER_LOOKUP) {
      const chunk = keys.slice(at, at + KEYS_PER_LOOKUP);
      const list = chunk.map(() => '?').join(', ');
      const rows = this.#db
        .prepare(
          `SELECT object_key AS k FROM samples WHERE object_key IN (${list})
           UNION SELECT map_key FROM samples WHERE map_key IN (${list})`,
        )
        .pluck()
        .all(...chunk, ...chunk) as string[];
      for (const k of rows) found.add(k);
    }
    return found;
  }

  /** Capture time of the newest sample indexed from a device, or undefined when it has none. */
  newestSampleAtMs(deviceId: string): number | undefined {
    const at = this.#db
      .prepare('SELECT MAX(at_ms) FROM samples WHERE device_id = ?')
      .pluck()
      .get(deviceId) as number | null;
    return at ?? undefined;
  }

  /** Deletes rows older than `beforeMs` from a table, in chunks; returns how many. */
  deleteOlderThan(table: EdgeTable, beforeMs: number): number {
    const column = {
      verdicts: 'at_ms',
      verdict_minutes: 'minute_ms',
      windows: 'end_ms',
      events: 'at_ms',
      samples: 'at_ms',
    }[table];
    let total = 0;
    for (;;) {
      const changes = this.#db
        .prepare(
          `DELETE FROM ${table} WHERE (device_id, boot, seq) IN
             (SELECT device_id, boot, seq FROM ${table} WHERE ${column} < ? LIMIT 5000)`,
        )
        .run(beforeMs).changes;
      total += changes;
      if (changes < 5000) return total;
    }
  }

  /** Closes the database; idempotent. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

/**
 * The conditions of an EdgeQuery on a table whose columns stand under `alias`
 * (`'s.'`, or none), the time range on `timeColumn`, then `extra` pairs; each
 * condition whose value is undefined is left out. Parameters in clause order.
 */
export function edgeConditions(
  q: Omit<EdgeQuery, 'limit'>,
  timeColumn: string,
  alias = '',
  extra: readonly (readonly [clause: string, value: unknown])[] = [],
): { clauses: string[]; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  for (const [clause, value] of [
    [`${alias}device_id = ?`, q.deviceId],
    [`${alias}model_name = ?`, q.modelName],
    [`${alias}model_version = ?`, q.modelVersion],
    [`${alias}${timeColumn} >= ?`, q.fromMs],
    [`${alias}${timeColumn} < ?`, q.toMs],
    ...extra,
  ] as const) {
    if (value === undefined) continue;
    clauses.push(clause);
    params.push(value);
  }
  return { clauses, params };
}

function filter(
  q: EdgeQuery,
  timeColumn: string,
  extra: readonly (readonly [string, unknown])[] = [],
): { where: string; params: unknown[] } {
  const { clauses, params } = edgeConditions(q, timeColumn, '', extra);
  return { where: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

function rowOf(kind: EdgeWrite['kind'], deviceId: string, record: unknown): unknown[] {
  switch (kind) {
    case 'verdicts': {
      const r = record as VerdictRecord;
      return [
        deviceId,
        r.boot,
        r.seq,
        r.frameSeq,
        Date.parse(r.at),
        r.modelName,
        r.modelVersion,
        r.score,
        r.verdict,
        r.reason ?? null,
        r.latencyMs,
      ];
    }
    case 'minutes': {
      const r = record as VerdictMinute;
      return [
        deviceId,
        r.boot,
        r.seq,
        Date.parse(r.minute),
        r.modelName,
        r.modelVersion,
        r.good,
        r.defect,
        r.unknown,
      ];
    }
    case 'windows': {
      const r = record as TelemetryWindow;
      return [
        deviceId,
        r.boot,
        r.seq,
        Date.parse(r.start),
        Date.parse(r.end),
        r.modelName,
        r.modelVersion,
        JSON.stringify(r),
      ];
    }
    case 'events': {
      const r = record as EventRecord;
      return [
        deviceId,
        r.boot,
        r.seq,
        Date.parse(r.at),
        r.level,
        r.type,
        r.message,
        r.code ?? null,
      ];
    }
    case 'samples': {
      const r = record as SampleRecord;
      return [
        deviceId,
        r.boot,
        r.seq,
        Date.parse(r.at),
        r.frameSeq,
        r.class,
        r.modelName,
        r.modelVersion,
        r.score,
        r.verdict,
        r.reason ?? null,
        r.objectKey,
        r.mapKey ?? null,
        r.bytes,
        r.sha256,
      ];
    }
  }
}

/** A row of the samples table as the index lists it. */
export function sampleOf(r: Record<string, unknown>): SampleIndexEntry {
  return {
    id: `${r.boot as number}-${r.seq as number}`,
    deviceId: r.device_id as string,
    boot: r.boot as number,
    seq: r.seq as number,
    frameSeq: r.frame_seq as number,
    at: new Date(r.at_ms as number).toISOString(),
    class: r.class as SampleRecord['class'],
    modelName: r.model_name as string | null,
    modelVersion: r.model_version as string | null,
    score: r.score as number | null,
    verdict: r.verdict as SampleRecord['verdict'],
    ...(r.reason === null ? {} : { reason: r.reason as string }),
    objectKey: r.object_key as string,
    ...(r.map_key === null ? {} : { mapKey: r.map_key as string }),
    bytes: r.bytes as number,
    sha256: r.sha256 as string,
  };
}
