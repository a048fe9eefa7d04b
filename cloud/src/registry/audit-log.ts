import type { Logger } from 'pino';
import type { RegistryDatabase } from './database.ts';

/** One audit entry. */
export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  details: Record<string, unknown>;
}

interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  details: string;
}

/**
 * Append-only record of every change: registrations, stage changes,
 * approvals, rollout actions, provisioning, key rotation. SQLite triggers
 * refuse UPDATE and DELETE on the table.
 */
export class AuditLog {
  readonly #db: RegistryDatabase;
  readonly #log: Logger | undefined;

  /** With a logger, every entry is also an info line (model published, device provisioned, rollout waves, ...). */
  constructor(db: RegistryDatabase, options: { logger?: Logger } = {}) {
    this.#db = db;
    this.#log = options.logger;
  }

  /** Appends an entry; returns it. */
  record(
    actor: string,
    action: string,
    subject: string,
    details: Record<string, unknown> = {},
  ): AuditEntry {
    const at = new Date().toISOString();
    const info = this.#db
      .prepare('INSERT INTO audit_log (at, actor, action, subject, details) VALUES (?, ?, ?, ?, ?)')
      .run(at, actor, action, subject, JSON.stringify(details));
    const entry = { id: Number(info.lastInsertRowid), at, actor, action, subject, details };
    this.#log?.info({ auditId: entry.id, actor, action, subject, details }, `${action} ${subject}`);
    return entry;
  }

  /** Entries, newest first, optionally filtered, at most `limit`. */
  list(
    filter: {
      action?: string;
      subject?: string;
      actor?: string;
      limit?: number;
      beforeId?: number;
    } = {},
  ): AuditEntry[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (clause: string, value: string | number | undefined) => {
      if (value === undefined || value === '') return;
      where.push(clause);
      args.push(value);
    };
    add('action = ?', filter.action);
    add('subject = ?', filter.subject);
    add('actor = ?', filter.actor);
    add('id < ?', filter.beforeId);
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.#db
      .prepare(sql)
      .all(...args, Math.min(filter.limit ?? 100, 1000)) as AuditRow[];
    return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
  }
}
