import type Database from 'better-sqlite3';
import { openDatabase } from '../sqlite/open-database.ts';
import {
  LinesightError,
  RETRAIN_JOB_STATES,
  type RetrainJobView,
  type RetrainMetrics,
  type RetrainProgress,
  type RetrainResult,
  type TrainingDatasetView,
} from '@linesight/protocol';
import type { RetrainRolloutMode } from './retrain-settings.ts';

// Each entry upgrades the schema by one version; never edit a shipped entry, append.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY, model TEXT NOT NULL, parent_version TEXT,
     state TEXT NOT NULL, trigger TEXT NOT NULL, trigger_detail TEXT, actor TEXT NOT NULL,
     options TEXT NOT NULL, created_ms INTEGER NOT NULL, started_ms INTEGER, finished_ms INTEGER,
     progress TEXT, result TEXT, error TEXT);
   CREATE INDEX jobs_model ON jobs(model, created_ms);
   -- One job per model at a time, held by the database itself.
   CREATE UNIQUE INDEX jobs_one_active ON jobs(model) WHERE state IN ('queued', 'running');
   CREATE TABLE datasets (
     fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms INTEGER NOT NULL,
     created_by TEXT NOT NULL, source TEXT NOT NULL, job_id TEXT,
     count INTEGER NOT NULL, good INTEGER NOT NULL, defect INTEGER NOT NULL, items TEXT NOT NULL);`,
];

/** Where a job stands; the last four are final. */
export const JOB_STATES = RETRAIN_JOB_STATES;
/** A job state. */
export type JobState = RetrainJobView['state'];
/** What started a job. */
export type JobTrigger = RetrainJobView['trigger'];

/** True for a state a job never leaves. */
export function isFinal(state: JobState): boolean {
  return state !== 'queued' && state !== 'running';
}

/** What a job was asked to do. */
export interface JobOptions {
  rollout: RetrainRolloutMode;
  epochs: number;
  seed: number;
  members: number;
  size?: number;
  /** Devices a rollout targets; absent: those running the champion. */
  devices?: string[];
}

/** How far a running job got. */
export type JobProgress = RetrainProgress;

/** Metrics of one model on the held-out set. */
export type HeldOutMetrics = RetrainMetrics;

/** What a finished job found and did: the lineage of the challenger. */
export type JobResult = RetrainResult;

/** A retraining job as the API shows it (its options name the rollout mode exactly). */
export type RetrainJob = RetrainJobView & { options: JobOptions };

/** One image of a training dataset. */
export interface DatasetItem {
  sha256: string;
  label: 'good' | 'defect';
  className: string;
}

/** A registered training dataset: its fingerprint is the trainer's `datasetFingerprint`. */
export type TrainingDataset = TrainingDatasetView;

/** Jobs and training datasets in SQLite (`<dataDir>/retrain.sqlite`). */
export class RetrainStore {
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = openDatabase(path, { migrations: MIGRATIONS });
  }

  /**
   * Marks every job a previous process left queued or running as failed, with
   * the reason; returns their ids. Called once at start.
   */
  failInterrupted(reason: string, nowMs = Date.now()): string[] {
    const rows = this.#db
      .prepare(`SELECT id FROM jobs WHERE state IN ('queued', 'running')`)
      .all() as { id: string }[];
    this.#db
      .prepare(
        `UPDATE jobs SET state = 'failed', error = ?, finished_ms = ? WHERE state IN ('queued', 'running')`,
      )
      .run(reason, nowMs);
    return rows.map((r) => r.id);
  }

  /** Adds a queued job; ERR_CLOUD_CONFLICT when the model has one queued or running. */
  add(job: {
    id: string;
    model: string;
    parentVersion: string | null;
    trigger: JobTrigger;
    triggerDetail: string | null;
    actor: string;
    options: JobOptions;
    nowMs?: number;
  }): RetrainJob {
    try {
      this.#db
        .prepare(
          `INSERT INTO jobs (id, model, parent_version, state, trigger, trigger_detail, actor, options, created_ms)
           VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)`,
        )
        .run(
          job.id,
          job.model,
          job.parentVersion,
          job.trigger,
          job.triggerDetail,
          job.actor,
          JSON.stringify(job.options),
          job.nowMs ?? Date.now(),
        );
    } catch (cause) {
      if ((cause as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const active = this.active(job.model);
        throw new LinesightError(
          'ERR_CLOUD_CONFLICT',
          `model ${job.model} has a retraining job under way (${active?.id ?? '?'}, ${active?.state ?? '?'}): one job per model at a time`,
          { cause, details: { activeJob: active?.id ?? null } },
        );
      }
      throw cause;
    }
    return this.get(job.id);
  }

  /** The queued or running job of a model, if any. */
  active(model: string): RetrainJob | undefined {
    const row = this.#db
      .prepare(`SELECT * FROM jobs WHERE model = ? AND state IN ('queued', 'running')`)
      .get(model) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : jobOf(row);
  }

  /** Moves a queued job to running. */
  markRunning(id: string, parentVersion: string, nowMs = Date.now()): void {
    this.#db
      .prepare(
        `UPDATE jobs SET state = 'running', parent_version = ?, started_ms = ? WHERE id = ? AND state = 'queued'`,
      )
      .run(parentVersion, nowMs, id);
  }

  /** Records progress of a running job. */
  setProgress(id: string, progress: JobProgress): void {
    this.#db
      .prepare(`UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'`)
      .run(JSON.stringify(progress), id);
  }

  /** Ends a job (only one not yet final); false when it had already ended. */
  finish(
    id: string,
    end: { state: Exclude<JobState, 'queued' | 'running'>; result?: JobResult; error?: string },
    nowMs = Date.now(),
  ): boolean {
    const info = this.#db
      .prepare(
        `UPDATE jobs SET state = ?, result = ?, error = ?, finished_ms = ?
         WHERE id = ? AND state IN ('queued', 'running')`,
      )
      .run(
        end.state,
        end.result === undefined ? null : JSON.stringify(end.result),
        end.error ?? null,
        nowMs,
        id,
      );
    return info.changes === 1;
  }

  /** One job; ERR_CLOUD_NOT_FOUND when absent. */
  get(id: string): RetrainJob {
    const row = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as
      Record<string, unknown> | undefined;
    if (row === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `retraining job ${id} does not exist`);
    return jobOf(row);
  }

  /** Jobs, newest first. */
  list(q: { model?: string; state?: JobState; limit?: number } = {}): RetrainJob[] {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (q.model !== undefined) {
      clauses.push('model = ?');
      params.push(q.model);
    }
    if (q.state !== undefined) {
      clauses.push('state = ?');
      params.push(q.state);
    }
    const where = clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`;
    const rows = this.#db
      .prepare(`SELECT * FROM jobs ${where} ORDER BY created_ms DESC, rowid DESC LIMIT ?`)
      .all(...params, q.limit ?? 100) as Record<string, unknown>[];
    return rows.map(jobOf);
  }

  /** The newest job of a model that a trigger started or that was started at all. */
  lastJob(model: string): RetrainJob | undefined {
    return this.list({ model, limit: 1 })[0];
  }

  /** The job that registered a model version, if one did. */
  jobOfCandidate(model: string, version: string): RetrainJob | undefined {
    return this.list({ model, state: 'registered', limit: 10_000 }).find(
      (j) => j.result?.candidateVersion === version,
    );
  }

  /** Registers a dataset (idempotent on the fingerprint: the first registration stays). */
  addDataset(input: {
    fingerprint: string;
    name: string;
    createdBy: string;
    source: 'upload' | 'retrain';
    jobId?: string;
    items: readonly DatasetItem[];
    nowMs?: number;
  }): TrainingDataset {
    const good = input.items.filter((i) => i.label === 'good').length;
    this.#db
      .prepare(
        `INSERT OR IGNORE INTO datasets (fingerprint, name, created_ms, created_by, source, job_id, count, good, defect, items)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        input.fingerprint,
        input.name,
        input.nowMs ?? Date.now(),
        input.createdBy,
        input.source,
        input.jobId ?? null,
        input.items.length,
        good,
        input.items.length - good,
        JSON.stringify(input.items),
      );
    return this.dataset(input.fingerprint) as TrainingDataset;
  }

  /** A dataset by fingerprint, or undefined. */
  dataset(fingerprint: string): TrainingDataset | undefined {
    const row = this.#db
      .prepare(
        'SELECT fingerprint, name, created_ms, created_by, source, job_id, count, good, defect FROM datasets WHERE fingerprint = ?',
      )
      .get(fingerprint) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : datasetOf(row);
  }

  /** The images and labels of a dataset; ERR_CLOUD_NOT_FOUND when absent. */
  datasetItems(fingerprint: string): DatasetItem[] {
    const row = this.#db
      .prepare('SELECT items FROM datasets WHERE fingerprint = ?')
      .get(fingerprint) as { items: string } | undefined;
    if (row === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `dataset ${fingerprint} is not registered`);
    return JSON.parse(row.items) as DatasetItem[];
  }

  /** Datasets, newest first. */
  datasets(limit = 100): TrainingDataset[] {
    const rows = this.#db
      .prepare(
        'SELECT fingerprint, name, created_ms, created_by, source, job_id, count, good, defect FROM datasets ORDER BY created_ms DESC LIMIT ?',
      )
      .all(limit) as Record<string, unknown>[];
    return rows.map(datasetOf);
  }

  /** Closes the database; idempotent. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

const iso = (ms: unknown): string | null =>
  ms === null || ms === undefined ? null : new Date(ms as number).toISOString();

function jobOf(r: Record<string, unknown>): RetrainJob {
  return {
    id: r.id as string,
    model: r.model as string,
    parentVersion: r.parent_version as string | null,
    state: r.state as JobState,
    trigger: r.trigger as JobTrigger,
    triggerDetail: r.trigger_detail as string | null,
    actor: r.actor as string,
    options: JSON.parse(r.options as string) as JobOptions,
    createdAt: iso(r.created_ms) as string,
    startedAt: iso(r.started_ms),
    finishedAt: iso(r.finished_ms),
    progress: r.progress === null ? null : (JSON.parse(r.progress as string) as JobProgress),
    result: r.result === null ? null : (JSON.parse(r.result as string) as JobResult),
    error: r.error as string | null,
  };
}

function datasetOf(r: Record<string, unknown>): TrainingDataset {
  return {
    fingerprint: r.fingerprint as string,
    name: r.name as string,
    createdAt: iso(r.created_ms) as string,
    createdBy: r.created_by as string,
    source: r.source as 'upload' | 'retrain',
    jobId: r.job_id as string | null,
    count: r.count as number,
    good: r.good as number,
    defect: r.defect as number,
  };
}
