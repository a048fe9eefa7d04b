import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  LinesightError,
  assertDeviceId,
  type DesiredState,
  type ReportedState,
  type Telemetry,
} from '@linesight/protocol';
import type Database from 'better-sqlite3';
import type { RegistryDatabase } from './database.ts';
import { StatementCache } from './statement-cache.ts';

/** A device as the API shows it. */
export interface DeviceRecord {
  id: string;
  labels: Record<string, string>;
  createdAt: string;
  online: boolean;
  lastSeen: string | null;
  reported: ReportedState | null;
  telemetry: Telemetry | null;
  desired: DesiredState | null;
}

interface DeviceRow {
  id: string;
  labels: string;
  created_at: string;
  online: number;
  last_seen: string | null;
  reported: string | null;
  telemetry: string | null;
  document: string | null;
}

// Live and shadow models of the current and the previous desired state: what a device may download.
const REMEMBERED_ASSIGNMENTS = 4;

// Device secrets are 256 random bits, so a plain SHA-256 is a sound verifier
// (no password stretching needed) and keeps MQTT CONNECT cheap for large fleets.
function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * Ids a device may not take: the broker's own logins (`admin`, the cloud's
 * `linesight-cloud`) and every `linesight-` id, the prefix of the cloud's
 * own MQTT client ids (a device with such an id could take over their sessions).
 */
export function reservedDeviceIdReason(id: string): string | undefined {
  if (id.toLowerCase() === 'admin') return `"${id}" is the operators' MQTT login`;
  if (id.toLowerCase().startsWith('linesight-'))
    return `ids starting with "linesight-" belong to the cloud's own MQTT clients`;
  return undefined;
}

/** Devices, their credentials, desired states and last reported states, in SQLite. */
export class DeviceRegistry {
  readonly #db: RegistryDatabase;
  // Prepared once: a fleet's reported state and telemetry arrive thousands of times a minute.
  readonly #statements: StatementCache;
  /**
   * What listReported returns, kept in memory and brought up to date from the rows written
   * since the last call: the rollout engine lists every device four times a second and a
   * rollout's status lists them on every read. Reading and parsing 10,000 devices' rows
   * each time took 170 ms and more, most of a core; few of them change between two reads.
   * Every method that writes a listed column marks its device (or every device) here.
   * The records are shared between callers: frozen, read them, never change them.
   */
  readonly #reported = new Map<string, ReportedRecord>();
  /**
   * The stored texts each record was parsed from, keyed by the record itself rather than
   * by id: a record and its texts are made together and go together (a replaced or
   * forgotten record takes its texts with it), so the two cannot drift apart, while
   * #reported stays the plain map reportedById hands out without a copy.
   */
  readonly #textsOf = new WeakMap<ReportedRecord, ParsedRow>();
  /** Moves whenever #reported changes (a record replaced, added or forgotten), and only then. */
  #version = 0;
  /** Ids whose rows changed since the last listReported; `all` until the first full read. */
  #changed: Set<string> | 'all' = 'all';
  /** #reported's ids in id order, rebuilt when a device was added or removed. */
  #order: string[] | undefined;

  constructor(db: RegistryDatabase) {
    this.#db = db;
    this.#statements = new StatementCache(db);
  }

  #prepare(sql: string): Database.Statement {
    return this.#statements.get(sql);
  }

  /** Creates a device and returns its secret; the secret is never stored or shown again. */
  provision(id: string, labels: Record<string, string> = {}): { id: string; secret: string } {
    assertDeviceId(id);
    const reserved = reservedDeviceIdReason(id);
    if (reserved !== undefined)
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `device id ${JSON.stringify(id)} is reserved: ${reserved}; choose another id`,
      );
    const secret = `lsd_${randomBytes(32).toString('base64url')}`;
    try {
      this.#prepare(
        'INSERT INTO devices (id, secret_sha256, labels, created_at) VALUES (?, ?, ?, ?)',
      ).run(id, hashSecret(secret), JSON.stringify(labels), new Date().toISOString());
    } catch (cause) {
      if ((cause as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new LinesightError('ERR_CLOUD_CONFLICT', `device ${id} is already provisioned`, {
          cause,
        });
      }
      throw cause;
    }
    this.#markChanged(id);
    return { id, secret };
  }

  /**
   * Creates many devices in one transaction (all or none) and returns their secrets in
   * order. A duplicate id in the list, or one already provisioned, refuses the whole
   * batch with ERR_CLOUD_CONFLICT naming them (at most 20).
   */
  provisionMany(
    devices: readonly { id: string; labels?: Record<string, string> }[],
  ): { id: string; secret: string }[] {
    const seen = new Set<string>();
    const conflicts: string[] = [];
    for (const { id } of devices) {
      if (seen.has(id) || this.has(id)) conflicts.push(id);
      seen.add(id);
    }
    if (conflicts.length > 0)
      throw new LinesightError(
        'ERR_CLOUD_CONFLICT',
        `${conflicts.length} device(s) of the batch are already provisioned or listed twice: ${conflicts.slice(0, 20).join(', ')}${conflicts.length > 20 ? ', ...' : ''}; nothing was provisioned`,
        { details: { conflicts: conflicts.slice(0, 20) } },
      );
    return this.#db.transaction(() => devices.map((d) => this.provision(d.id, d.labels ?? {})))();
  }

  /** Replaces a device's secret (the old one stops working at once) and returns the new one. */
  rotateSecret(id: string): { id: string; secret: string } {
    const secret = `lsd_${randomBytes(32).toString('base64url')}`;
    const changed = this.#prepare('UPDATE devices SET secret_sha256 = ? WHERE id = ?').run(
      hashSecret(secret),
      id,
    ).changes;
    if (changed === 0)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `device ${id} is not provisioned`);
    return { id, secret };
  }

  /**
   * Removes a device with its credentials and desired state (decommissioning);
   * the audit log keeps the record. ERR_CLOUD_NOT_FOUND when absent.
   */
  remove(id: string): void {
    const removed = this.#db.transaction(() => {
      this.#prepare('DELETE FROM desired_states WHERE device_id = ?').run(id);
      // Its assignments name it (a foreign key), and a device provisioned later under the
      // same id must not inherit what this one could download.
      this.#prepare('DELETE FROM device_assignments WHERE device_id = ?').run(id);
      return this.#prepare('DELETE FROM devices WHERE id = ?').run(id).changes;
    })();
    this.#markChanged(id);
    if (removed === 0)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `device ${id} is not provisioned`);
  }

  /** True when the id and secret match a provisioned device. */
  checkSecret(id: string, secret: string): boolean {
    const row = this.#prepare('SELECT secret_sha256 FROM devices WHERE id = ?').get(id) as
      { secret_sha256: string } | undefined;
    if (row === undefined) return false;
    const expected = Buffer.from(row.secret_sha256, 'hex');
    const actual = Buffer.from(hashSecret(secret), 'hex');
    return timingSafeEqual(expected, actual);
  }

  /** True when a device with this id exists. */
  has(id: string): boolean {
    return this.#prepare('SELECT 1 FROM devices WHERE id = ?').get(id) !== undefined;
  }

  /** One device; ERR_CLOUD_NOT_FOUND when absent. */
  get(id: string): DeviceRecord {
    const row = this.#prepare(
      'SELECT d.*, s.document FROM devices d LEFT JOIN desired_states s ON s.device_id = d.id WHERE d.id = ?',
    ).get(id) as DeviceRow | undefined;
    if (row === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `device ${id} is not provisioned`);
    return fromRow(row);
  }

  /** Every device, by id. */
  list(): DeviceRecord[] {
    const rows = this.#prepare(
      'SELECT d.*, s.document FROM devices d LEFT JOIN desired_states s ON s.device_id = d.id ORDER BY d.id',
    ).all() as DeviceRow[];
    return rows.map(fromRow);
  }

  /**
   * Every device without its desired-state document (the bulky part), in id order, for
   * code that only needs what devices report, such as the rollout engine. The records
   * are shared and frozen (see #reported).
   */
  listReported(): ReportedRecord[] {
    const byId = this.reportedById();
    this.#order ??= [...byId.keys()].sort();
    return this.#order.map((id) => byId.get(id) as ReportedRecord);
  }

  /** listReported by device id: the registry's own map, up to date; never change it. */
  reportedById(): ReadonlyMap<string, ReportedRecord> {
    this.#refresh();
    return this.#reported;
  }

  /**
   * The version of the map reportedById returns, brought up to date first: it moves
   * whenever that map changes and only then, so a caller that keeps a copy of the map
   * (the rollout engine, for a tick that awaits) copies again only when it moved.
   */
  reportedVersion(): number {
    this.#refresh();
    return this.#version;
  }

  /** Re-reads the rows written since the last refresh into #reported. */
  #refresh(): void {
    const changed = this.#changed;
    // Past a few thousand changed rows one full read costs less than a query each.
    if (changed === 'all' || changed.size > FULL_READ_AFTER) {
      const rows = this.#prepare(
        'SELECT id, labels, created_at, online, last_seen, reported, telemetry FROM devices',
      ).all() as ReportedRow[];
      const seen = new Set<string>();
      for (const row of rows) {
        seen.add(row.id);
        this.#store(row);
      }
      for (const id of this.#reported.keys()) if (!seen.has(id)) this.#forget(id);
    } else {
      const one = this.#prepare(
        'SELECT id, labels, created_at, online, last_seen, reported, telemetry FROM devices WHERE id = ?',
      );
      for (const id of changed) {
        const row = one.get(id) as ReportedRow | undefined;
        if (row === undefined) this.#forget(id);
        else this.#store(row);
      }
    }
    this.#changed = new Set();
  }

  #store(row: ReportedRow): void {
    const previous = this.#reported.get(row.id);
    if (previous === undefined) this.#order = undefined;
    const cached = previous === undefined ? undefined : this.#textsOf.get(previous);
    const texts: ParsedRow = {
      labels: reuseOrParse(cached?.labels, row.labels),
      reported: reuseOrParse(cached?.reported, row.reported),
      telemetry: reuseOrParse(cached?.telemetry, row.telemetry),
    };
    if (
      previous !== undefined &&
      cached?.labels === texts.labels &&
      cached.reported === texts.reported &&
      cached.telemetry === texts.telemetry &&
      previous.online === (row.online === 1) &&
      previous.lastSeen === row.last_seen &&
      previous.createdAt === row.created_at
    )
      return;
    const record: ReportedRecord = Object.freeze({
      id: row.id,
      labels: texts.labels.value as Record<string, string>,
      createdAt: row.created_at,
      online: row.online === 1,
      lastSeen: row.last_seen,
      reported: texts.reported.value as ReportedState | null,
      telemetry: texts.telemetry.value as Telemetry | null,
    });
    this.#textsOf.set(record, texts);
    this.#reported.set(row.id, record);
    this.#version++;
  }

  #forget(id: string): void {
    if (!this.#reported.delete(id)) return;
    this.#order = undefined;
    this.#version++;
  }

  /** Marks a device's listed columns as written (`undefined`: every device's). */
  #markChanged(id?: string): void {
    if (id === undefined) this.#changed = 'all';
    else if (this.#changed !== 'all') this.#changed.add(id);
  }

  /** Records presence from the device's status topic. */
  setOnline(id: string, online: boolean, at: string): void {
    this.#prepare('UPDATE devices SET online = ?, last_seen = ? WHERE id = ?').run(
      online ? 1 : 0,
      at,
      id,
    );
    this.#markChanged(id);
  }

  /** Stores the device's latest reported state. */
  setReported(id: string, reported: ReportedState): void {
    this.#prepare('UPDATE devices SET reported = ?, last_seen = ? WHERE id = ?').run(
      JSON.stringify(reported),
      reported.updatedAt,
      id,
    );
    this.#markChanged(id);
  }

  /** Stores the device's latest telemetry. */
  setTelemetry(id: string, telemetry: Telemetry): void {
    this.#prepare('UPDATE devices SET telemetry = ?, last_seen = ? WHERE id = ?').run(
      JSON.stringify(telemetry),
      telemetry.at,
      id,
    );
    this.#markChanged(id);
  }

  /** The next desired-state revision for a device (1 for the first). */
  nextRevision(id: string): number {
    const row = this.#prepare('SELECT revision FROM desired_states WHERE device_id = ?').get(id) as
      { revision: number } | undefined;
    return (row?.revision ?? 0) + 1;
  }

  /** Stores a device's desired state and remembers the models it names (see mayDownload). */
  setDesired(doc: DesiredState): void {
    this.#prepare(
      `INSERT INTO desired_states (device_id, revision, document) VALUES (?, ?, ?)
         ON CONFLICT(device_id) DO UPDATE SET revision = excluded.revision, document = excluded.document`,
    ).run(doc.deviceId, doc.revision, JSON.stringify(doc));
    for (const assignment of [doc.model, doc.shadow]) {
      if (assignment === null || assignment === undefined) continue;
      const { name, version } = assignment.signed.manifest;
      this.#prepare(
        `INSERT INTO device_assignments (device_id, model_name, model_version, revision) VALUES (?, ?, ?, ?)
           ON CONFLICT(device_id, model_name, model_version) DO UPDATE SET revision = excluded.revision`,
      ).run(doc.deviceId, name, version, doc.revision);
    }
    this.#prepare(
      `DELETE FROM device_assignments WHERE device_id = ? AND rowid NOT IN (
         SELECT rowid FROM device_assignments WHERE device_id = ?
          ORDER BY revision DESC LIMIT ${REMEMBERED_ASSIGNMENTS})`,
    ).run(doc.deviceId, doc.deviceId);
  }

  /**
   * True when a device may download name@version: its desired state names it
   * (live or shadow), or it did recently (its last-known-good). The newest
   * four models assigned to each device are remembered.
   */
  mayDownload(deviceId: string, name: string, version: string): boolean {
    return (
      this.#prepare(
        'SELECT 1 FROM device_assignments WHERE device_id = ? AND model_name = ? AND model_version = ?',
      ).get(deviceId, name, version) !== undefined
    );
  }

  /** Stores many desired states in one transaction. */
  setDesiredMany(docs: readonly DesiredState[]): void {
    this.#db.transaction(() => {
      for (const doc of docs) this.setDesired(doc);
    })();
  }

  /** Every stored desired state, for republishing after a restart. */
  allDesired(): DesiredState[] {
    const rows = this.#prepare('SELECT document FROM desired_states').all() as {
      document: string;
    }[];
    return rows.map((r) => JSON.parse(r.document) as DesiredState);
  }

  /** Marks every device offline (on start, before the broker reports presence). */
  markAllOffline(): void {
    this.#prepare('UPDATE devices SET online = 0').run();
    this.#markChanged();
  }
}

/** A stored JSON text and its parsed value. */
interface ParsedText {
  text: string | null;
  value: unknown;
}

interface ParsedRow {
  labels: ParsedText;
  reported: ParsedText;
  telemetry: ParsedText;
}

type ReportedRow = Omit<DeviceRow, 'document'>;

/** A device as listReported gives it: frozen, shared between callers. */
export type ReportedRecord = Readonly<Omit<DeviceRecord, 'desired'>>;

const FULL_READ_AFTER = 2_000;

/** The cached value when the text is unchanged, else the text parsed now (frozen: it is shared). */
function reuseOrParse(cached: ParsedText | undefined, text: string | null): ParsedText {
  if (cached !== undefined && cached.text === text) return cached;
  return { text, value: text === null ? null : Object.freeze(JSON.parse(text) as object) };
}

function fromRow(row: DeviceRow): DeviceRecord {
  return {
    id: row.id,
    labels: JSON.parse(row.labels) as Record<string, string>,
    createdAt: row.created_at,
    online: row.online === 1,
    lastSeen: row.last_seen,
    reported: row.reported === null ? null : (JSON.parse(row.reported) as ReportedState),
    telemetry: row.telemetry === null ? null : (JSON.parse(row.telemetry) as Telemetry),
    desired: row.document === null ? null : (JSON.parse(row.document) as DesiredState),
  };
}
