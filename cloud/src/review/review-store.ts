import type Database from 'better-sqlite3';
import { openDatabase } from '../sqlite/open-database.ts';
import { LinesightError, REVIEW_SAMPLE_CLASSES } from '@linesight/protocol';
import { edgeConditions, sampleOf, type SampleIndexEntry } from '../ingest/edge-data-store.ts';

// Each entry upgrades the schema by one version; never edit a shipped entry, append.
const MIGRATIONS: readonly string[] = [
  // A label row keeps the sample as it was labelled (model, verdict, score, object keys), so
  // quality numbers and dataset exports outlive the sample index's retention.
  `CREATE TABLE labels (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     device_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
     label TEXT NOT NULL CHECK (label IN ('good', 'defect')),
     defect_class TEXT, note TEXT,
     reviewer TEXT NOT NULL, actor TEXT NOT NULL, at_ms INTEGER NOT NULL,
     sample_at_ms INTEGER NOT NULL, sample_class TEXT NOT NULL,
     model_name TEXT, model_version TEXT, score REAL, verdict TEXT NOT NULL,
     object_key TEXT NOT NULL, map_key TEXT, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL);
   CREATE INDEX labels_sample ON labels(device_id, boot, seq, id);
   CREATE TABLE current_labels (
     device_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
     label_id INTEGER NOT NULL,
     PRIMARY KEY (device_id, boot, seq)) WITHOUT ROWID;
   CREATE INDEX current_labels_label ON current_labels(label_id);`,
  // Retention keeps the images of labelled samples (retraining reads them): it asks by key.
  `CREATE INDEX labels_object ON labels(object_key);
   CREATE INDEX labels_map ON labels(map_key);`,
];

/** The two labels an operator gives a sample. */
export const LABELS = ['good', 'defect'] as const;
/** `good` or `defect`. */
export type Label = (typeof LABELS)[number];

/** Sample classes in queue order: most uncertain first, then defects, then random, then unknown. */
export const QUEUE_CLASSES = REVIEW_SAMPLE_CLASSES;
/** A sample class (why the device kept the frame). */
export type SampleClass = (typeof QUEUE_CLASSES)[number];

/** One label given to a sample: who, when, what. */
export interface LabelEntry {
  labelId: number;
  deviceId: string;
  sampleId: string;
  label: Label;
  defectClass: string | null;
  note: string | null;
  /** Who labelled: the `reviewer` field of the request, else the authenticated actor. */
  reviewer: string;
  /** The principal that authenticated the request (a named token's actor, or `admin`). */
  actor: string;
  at: string;
}

/** What a new label says. */
export interface NewLabel {
  deviceId: string;
  boot: number;
  seq: number;
  label: Label;
  defectClass?: string;
  note?: string;
  reviewer: string;
  actor: string;
  atMs?: number;
}

/** Filters of the queue. */
export interface QueueQuery {
  deviceId?: string;
  modelName?: string;
  modelVersion?: string;
  sampleClass?: SampleClass;
  fromMs?: number;
  toMs?: number;
  /** false (default): samples without a label; true: labelled samples, newest label first. */
  labelled?: boolean;
  limit?: number;
  offset?: number;
}

/** One sample in the queue with its model's threshold and how close the score came to it. */
export interface QueueEntry {
  sample: SampleIndexEntry;
  /** The decision threshold of the sample's model version; null when the version is not registered. */
  threshold: number | null;
  /** |score - threshold| / threshold: 0 is the most uncertain; null without score or threshold. */
  distance: number | null;
  /** The current label (labelled samples only). */
  label: LabelEntry | null;
}

/** One row of label counts: a model version on one device on one day. */
export interface LabelCountRow {
  modelName: string | null;
  modelVersion: string | null;
  deviceId: string;
  dayMs: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  /** Labelled samples the model gave no verdict for (`unknown`): in no rate. */
  unscored: number;
}

/** Filters of the quality counts (on the labelled sample's capture time). */
export interface QualityQuery {
  deviceId?: string;
  modelName?: string;
  modelVersion?: string;
  fromMs?: number;
  toMs?: number;
}

/** A labelled sample as a dataset export lists it: its image and its label as of the export. */
export interface LabelledSample {
  deviceId: string;
  sampleId: string;
  label: Label;
  defectClass: string | null;
  objectKey: string;
  mapKey: string | null;
  sha256: string;
  bytes: number;
  capturedAt: string;
  sampleClass: string;
  modelName: string | null;
  modelVersion: string | null;
  score: number | null;
  verdict: string;
  labelId: number;
  labelledAt: string;
  reviewer: string;
}

/** The decision threshold of every registered model version. */
export type ThresholdList = () => Iterable<{ name: string; version: string; threshold: number }>;

const DAY_MS = 86_400_000;

/**
 * Review labels in their own SQLite file (WAL), with the edge-data file
 * attached read-only in spirit (only SELECTs) so the queue is one query
 * over the sample index. Labels are append-only: a correction is a new row
 * and `current_labels` points at the newest one per sample.
 */
export class ReviewStore {
  readonly #db: Database.Database;
  readonly #thresholds: ThresholdList;

  constructor(path: string, edgeDataPath: string, thresholds: ThresholdList) {
    const db = openDatabase(path, { migrations: MIGRATIONS });
    this.#db = db;
    this.#thresholds = thresholds;
    db.prepare('ATTACH DATABASE ? AS edge').run(edgeDataPath);
  }

  /** A page of the queue and how many samples match in all. */
  queue(q: QueueQuery): { total: number; entries: QueueEntry[] } {
    // One read transaction: the count and the page see the same snapshot while the ingest writes.
    return this.#db.transaction(() => this.#queue(q))();
  }

  #queue(q: QueueQuery): { total: number; entries: QueueEntry[] } {
    const labelled = q.labelled === true;
    const { clauses, params } = edgeConditions(q, 'at_ms', 's.', [['s.class = ?', q.sampleClass]]);
    const where = clauses.length === 0 ? '' : `AND ${clauses.join(' AND ')}`;
    // Unlabelled = matching samples minus the labelled ones among them: two counts SQLite
    // answers from indexes, instead of probing current_labels once per sample. CROSS JOIN
    // keeps current_labels (the few) as the outer loop; the planner has no statistics.
    const labelledFrom = `FROM current_labels c CROSS JOIN edge.samples s
      ON s.device_id = c.device_id AND s.boot = c.boot AND s.seq = c.seq WHERE 1 ${where}`;
    const count = (sql: string) =>
      (this.#db.prepare(`SELECT COUNT(*) AS n ${sql}`).get(...params) as { n: number }).n;
    const total = labelled
      ? count(labelledFrom)
      : count(`FROM edge.samples s WHERE 1 ${where}`) - count(labelledFrom);
    const thresholds = [...this.#thresholds()];
    const byVersion = new Map(thresholds.map((t) => [`${t.name}\u0000${t.version}`, t.threshold]));
    const thresholdOf = (name: string | null, version: string | null) =>
      name === null || version === null ? null : (byVersion.get(`${name}\u0000${version}`) ?? null);
    // Labelled: walk current_labels (far fewer rows) newest label first. Unlabelled: every
    // sample without a label, sorted on keys and sort columns only; full rows for the page.
    let keys: { device_id: string; boot: number; seq: number }[];
    if (labelled) {
      keys = this.#db
        .prepare(
          `SELECT s.device_id, s.boot, s.seq ${labelledFrom} ORDER BY c.label_id DESC LIMIT ? OFFSET ?`,
        )
        .all(...params, q.limit ?? 50, q.offset ?? 0) as typeof keys;
    } else {
      // The registry's thresholds as a table, so the distance is computed by SQLite, not per row in JS.
      const table =
        thresholds.length === 0
          ? 'SELECT NULL AS name, NULL AS version, NULL AS threshold WHERE 0'
          : `VALUES ${thresholds.map(() => '(?, ?, ?)').join(', ')}`;
      keys = this.#db
        .prepare(
          `WITH t(name, version, threshold) AS (${table})
           SELECT s.device_id, s.boot, s.seq,
                  CASE s.class WHEN 'uncertain' THEN 0 WHEN 'defect' THEN 1 WHEN 'random' THEN 2 ELSE 3 END AS rank,
                  CASE WHEN s.score IS NULL OR t.threshold IS NULL THEN NULL
                       WHEN t.threshold > 0 THEN ABS(s.score - t.threshold) / t.threshold
                       ELSE ABS(s.score - t.threshold) END AS distance
           FROM edge.samples s LEFT JOIN t ON t.name = s.model_name AND t.version = s.model_version
           WHERE NOT EXISTS (SELECT 1 FROM current_labels c
             WHERE c.device_id = s.device_id AND c.boot = s.boot AND c.seq = s.seq) ${where}
           ORDER BY rank, distance IS NULL, distance, s.at_ms DESC, s.device_id, s.boot, s.seq
           LIMIT ? OFFSET ?`,
        )
        .all(
          ...thresholds.flatMap((t) => [t.name, t.version, t.threshold]),
          ...params,
          q.limit ?? 50,
          q.offset ?? 0,
        ) as typeof keys;
    }
    const sampleByKey = this.#db.prepare(
      `SELECT s.*, c.label_id AS current_label_id FROM edge.samples s LEFT JOIN current_labels c
         ON c.device_id = s.device_id AND c.boot = s.boot AND c.seq = s.seq
       WHERE s.device_id = ? AND s.boot = ? AND s.seq = ?`,
    );
    const labelById = this.#db.prepare('SELECT * FROM labels WHERE id = ?');
    const entries = keys.map((k) => {
      const r = sampleByKey.get(k.device_id, k.boot, k.seq) as Record<string, unknown>;
      const sample = sampleOf(r);
      const labelId = r.current_label_id as number | null;
      const threshold = thresholdOf(sample.modelName, sample.modelVersion);
      return {
        sample,
        threshold,
        distance: distanceOf(sample.score, threshold),
        label: labelId === null ? null : labelOf(labelById.get(labelId) as Record<string, unknown>),
      };
    });
    return { total, entries };
  }

  /** Samples waiting for a label (for the queue gauge). */
  unlabelledCount(): number {
    // One statement: both counts from the same snapshot.
    return (
      this.#db
        .prepare(
          `SELECT (SELECT COUNT(*) FROM edge.samples) - (SELECT COUNT(*) FROM current_labels c
             CROSS JOIN edge.samples s ON s.device_id = c.device_id AND s.boot = c.boot AND s.seq = c.seq) AS n`,
        )
        .get() as { n: number }
    ).n;
  }

  /**
   * Appends a label to a sample and makes it the current one; the sample
   * must be in the index. ERR_CLOUD_NOT_FOUND when it is not.
   */
  addLabel(input: NewLabel): LabelEntry {
    return this.#db.transaction(() => {
      const row = this.#db
        .prepare('SELECT * FROM edge.samples WHERE device_id = ? AND boot = ? AND seq = ?')
        .get(input.deviceId, input.boot, input.seq) as Record<string, unknown> | undefined;
      if (row === undefined)
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          `no sample ${input.boot}-${input.seq} from device ${input.deviceId}`,
        );
      const s = sampleOf(row);
      const id = this.#db
        .prepare(
          `INSERT INTO labels (device_id, boot, seq, label, defect_class, note, reviewer, actor, at_ms,
             sample_at_ms, sample_class, model_name, model_version, score, verdict,
             object_key, map_key, bytes, sha256)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          input.deviceId,
          input.boot,
          input.seq,
          input.label,
          input.defectClass ?? null,
          input.note ?? null,
          input.reviewer,
          input.actor,
          input.atMs ?? Date.now(),
          Date.parse(s.at),
          s.class,
          s.modelName,
          s.modelVersion,
          s.score,
          s.verdict,
          s.objectKey,
          s.mapKey ?? null,
          s.bytes,
          s.sha256,
        ).lastInsertRowid as number;
      this.#db
        .prepare(
          `INSERT INTO current_labels VALUES (?, ?, ?, ?)
           ON CONFLICT (device_id, boot, seq) DO UPDATE SET label_id = excluded.label_id`,
        )
        .run(input.deviceId, input.boot, input.seq, id);
      return labelOf(
        this.#db.prepare('SELECT * FROM labels WHERE id = ?').get(id) as Record<string, unknown>,
      );
    })();
  }

  /** True when the sample index holds this sample. */
  hasSample(deviceId: string, boot: number, seq: number): boolean {
    return (
      this.#db
        .prepare('SELECT 1 FROM edge.samples WHERE device_id = ? AND boot = ? AND seq = ?')
        .get(deviceId, boot, seq) !== undefined
    );
  }

  /**
   * True when some label points at this object (a sample's image or anomaly
   * map): retention keeps it, because retraining and exports read it.
   */
  isLabelledObject(key: string): boolean {
    return (
      this.#db
        .prepare('SELECT 1 FROM labels WHERE object_key = ? OR map_key = ? LIMIT 1')
        .get(key, key) !== undefined
    );
  }

  /**
   * Which of `keys` some label points at (what isLabelledObject says of each),
   * one indexed lookup per 500 keys: the orphan sweep asks a page at a time.
   */
  labelledObjects(keys: readonly string[]): Set<string> {
    const found = new Set<string>();
    for (let at = 0; at < keys.length; at += 500) {
      const chunk = keys.slice(at, at + 500);
      const list = chunk.map(() => '?').join(', ');
      const rows = this.#db
        .prepare(
          `SELECT object_key FROM labels WHERE object_key IN (${list})
           UNION SELECT map_key FROM labels WHERE map_key IN (${list})`,
        )
        .pluck()
        .all(...chunk, ...chunk) as string[];
      for (const k of rows) found.add(k);
    }
    return found;
  }

  /** Every label of a sample, oldest first; the last one is current. */
  history(deviceId: string, boot: number, seq: number): LabelEntry[] {
    const rows = this.#db
      .prepare('SELECT * FROM labels WHERE device_id = ? AND boot = ? AND seq = ? ORDER BY id')
      .all(deviceId, boot, seq) as Record<string, unknown>[];
    return rows.map(labelOf);
  }

  /**
   * Confusion counts of the current labels against the model's verdicts,
   * per model version, device and day of capture. Positive means defect.
   */
  labelCounts(q: QualityQuery): LabelCountRow[] {
    const { clauses, params } = edgeConditions(q, 'sample_at_ms', 'l.');
    const rows = this.#db
      .prepare(
        `SELECT l.model_name, l.model_version, l.device_id,
                (l.sample_at_ms / ${DAY_MS}) * ${DAY_MS} AS day,
                SUM(l.verdict = 'defect' AND l.label = 'defect') AS tp,
                SUM(l.verdict = 'defect' AND l.label = 'good') AS fp,
                SUM(l.verdict = 'good' AND l.label = 'defect') AS fn,
                SUM(l.verdict = 'good' AND l.label = 'good') AS tn,
                SUM(l.verdict NOT IN ('good', 'defect')) AS unscored
         FROM current_labels c JOIN labels l ON l.id = c.label_id
         ${clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`}
         GROUP BY l.model_name, l.model_version, l.device_id, day
         ORDER BY l.model_name, l.model_version, day, l.device_id`,
      )
      .all(...params) as Record<string, unknown>[];
    return rows.map((r) => ({
      modelName: r.model_name as string | null,
      modelVersion: r.model_version as string | null,
      deviceId: r.device_id as string,
      dayMs: r.day as number,
      tp: r.tp as number,
      fp: r.fp as number,
      fn: r.fn as number,
      tn: r.tn as number,
      unscored: r.unscored as number,
    }));
  }

  /**
   * Each labelled sample with its newest label (given before `asOfMs`, when
   * set, so an export can be reproduced later), in (device, boot, seq) order.
   */
  labelledSamples(q: QualityQuery & { asOfMs?: number }): LabelledSample[] {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      clauses.push(clause);
      params.push(value);
    };
    if (q.asOfMs === undefined) clauses.push('l.id IN (SELECT label_id FROM current_labels)');
    else
      add(
        `l.id = (SELECT MAX(id) FROM labels n WHERE n.device_id = l.device_id AND n.boot = l.boot
                   AND n.seq = l.seq AND n.at_ms < ?)`,
        q.asOfMs,
      );
    if (q.deviceId !== undefined) add('l.device_id = ?', q.deviceId);
    if (q.modelName !== undefined) add('l.model_name = ?', q.modelName);
    if (q.modelVersion !== undefined) add('l.model_version = ?', q.modelVersion);
    if (q.fromMs !== undefined) add('l.sample_at_ms >= ?', q.fromMs);
    if (q.toMs !== undefined) add('l.sample_at_ms < ?', q.toMs);
    const rows = this.#db
      .prepare(
        `SELECT * FROM labels l WHERE ${clauses.join(' AND ')} ORDER BY l.device_id, l.boot, l.seq`,
      )
      .all(...params) as Record<string, unknown>[];
    return rows.map((r) => ({
      deviceId: r.device_id as string,
      sampleId: `${r.boot as number}-${r.seq as number}`,
      label: r.label as Label,
      defectClass: r.defect_class as string | null,
      objectKey: r.object_key as string,
      mapKey: r.map_key as string | null,
      sha256: r.sha256 as string,
      bytes: r.bytes as number,
      capturedAt: new Date(r.sample_at_ms as number).toISOString(),
      sampleClass: r.sample_class as string,
      modelName: r.model_name as string | null,
      modelVersion: r.model_version as string | null,
      score: r.score as number | null,
      verdict: r.verdict as string,
      labelId: r.id as number,
      labelledAt: new Date(r.at_ms as number).toISOString(),
      reviewer: r.reviewer as string,
    }));
  }

  /** Closes the database (and detaches the edge-data file); idempotent. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

/** Relative distance of a score from its threshold; null when either is unknown. */
export function distanceOf(score: number | null, threshold: number | null): number | null {
  if (score === null || threshold === null || !Number.isFinite(score)) return null;
  const d = Math.abs(score - threshold);
  return threshold > 0 ? d / threshold : d;
}

function labelOf(r: Record<string, unknown>): LabelEntry {
  return {
    labelId: r.id as number,
    deviceId: r.device_id as string,
    sampleId: `${r.boot as number}-${r.seq as number}`,
    label: r.label as Label,
    defectClass: r.defect_class as string | null,
    note: r.note as string | null,
    reviewer: r.reviewer as string,
    actor: r.actor as string,
    at: new Date(r.at_ms as number).toISOString(),
  };
}
