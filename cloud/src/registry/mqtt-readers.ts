import { createHash, randomBytes } from 'node:crypto';
import { isValidDeviceId, LinesightError } from '@linesight/protocol';
import type { RegistryDatabase } from './database.ts';
import { sameSecret } from './same-secret.ts';

const NAME = /^[a-z0-9][a-z0-9_.@-]{0,63}$/;

/** The MQTT username (and client id) of a reader: a colon, which no device id may hold. */
export const READER_PREFIX = 'reader:';

/** Devices a reader may read: a list of ids, or every device. */
export type ReaderGrant = readonly string[] | '*';

/** A reader as listed (never its password). */
export interface MqttReaderInfo {
  name: string;
  username: string;
  devices: string[];
  createdAt: string;
  createdBy: string;
}

function hash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * Read-only MQTT credentials for line systems and MES: a reader may subscribe
 * to the results and telemetry of the devices it is granted, nothing else (the
 * broker's ACL enforces it). Passwords are 192 random bits, stored as SHA-256.
 */
export class MqttReaders {
  readonly #db: RegistryDatabase;

  constructor(db: RegistryDatabase) {
    this.#db = db;
  }

  /** Creates a reader; the password is shown only this once. */
  create(
    name: string,
    devices: readonly string[],
    createdBy: string,
  ): { name: string; username: string; password: string; devices: string[] } {
    if (!NAME.test(name))
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid reader name ${JSON.stringify(name)}: use 1-64 of a-z 0-9 _ . @ -`,
      );
    const all = devices.length === 1 && devices[0] === '*';
    const bad = all ? [] : devices.filter((d) => !isValidDeviceId(d));
    if (devices.length === 0 || bad.length > 0)
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        devices.length === 0
          ? 'a reader needs at least one device (or "*" for every device)'
          : `not device ids: ${bad.map((d) => JSON.stringify(d)).join(', ')} (or give only "*" for every device)`,
      );
    const password = `lsr_${randomBytes(24).toString('base64url')}`;
    const list = [...new Set(devices)];
    try {
      this.#db
        .prepare(
          'INSERT INTO mqtt_readers (name, secret_sha256, devices, created_at, created_by) VALUES (?, ?, ?, ?, ?)',
        )
        .run(name, hash(password), JSON.stringify(list), new Date().toISOString(), createdBy);
    } catch (cause) {
      if ((cause as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT'))
        throw new LinesightError('ERR_CLOUD_CONFLICT', `reader ${name} exists already`, { cause });
      throw cause;
    }
    return { name, username: `${READER_PREFIX}${name}`, password, devices: list };
  }

  /** Every reader with its grant (never the password). */
  list(): MqttReaderInfo[] {
    const rows = this.#db
      .prepare(
        'SELECT name, devices, created_at AS createdAt, created_by AS createdBy FROM mqtt_readers ORDER BY name',
      )
      .all() as { name: string; devices: string; createdAt: string; createdBy: string }[];
    return rows.map((r) => ({
      ...r,
      username: `${READER_PREFIX}${r.name}`,
      devices: JSON.parse(r.devices) as string[],
    }));
  }

  /** Removes a reader: its password stops working at once. ERR_CLOUD_NOT_FOUND when there is none. */
  revoke(name: string): void {
    if (this.#db.prepare('DELETE FROM mqtt_readers WHERE name = ?').run(name).changes === 0)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `no reader ${name}`);
  }

  /** The reader a username and password belong to, with its grant; undefined when they do not match. */
  check(username: string, password: string): { name: string; devices: ReaderGrant } | undefined {
    if (!username.startsWith(READER_PREFIX)) return undefined;
    const name = username.slice(READER_PREFIX.length);
    const row = this.#db
      .prepare('SELECT secret_sha256 AS secret, devices FROM mqtt_readers WHERE name = ?')
      .get(name) as { secret: string; devices: string } | undefined;
    // Compare even without a row, so timing does not tell which names exist.
    const matches = sameSecret(hash(password), row?.secret ?? '');
    if (row === undefined || !matches) return undefined;
    const devices = JSON.parse(row.devices) as string[];
    return { name, devices: devices.length === 1 && devices[0] === '*' ? '*' : devices };
  }
}
