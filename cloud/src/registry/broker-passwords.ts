import type { RegistryDatabase } from './database.ts';
import { StatementCache } from './statement-cache.ts';
import type { ReaderGrant } from './mqtt-readers.ts';

/** A device's login as a broker's password file holds it. */
export interface DeviceBrokerLogin {
  deviceId: string;
  /** The password's hash in the broker's format; null when the cloud never saw this device's secret. */
  passwordHash: string | null;
}

/** A reader's login and grant as a broker's password and ACL files hold them. */
export interface ReaderBrokerLogin {
  name: string;
  passwordHash: string | null;
  devices: ReaderGrant;
}

/**
 * The devices' and readers' passwords in the form an external broker's own
 * files hold them (Mosquitto's `password_file`), beside the registry's rows, so
 * the cloud can write those files again at any time. A decommissioned device or
 * a revoked reader takes its row, and so its password, with it.
 */
export class BrokerPasswords {
  readonly #db: RegistryDatabase;
  readonly #statements: StatementCache;

  constructor(db: RegistryDatabase) {
    this.#db = db;
    this.#statements = new StatementCache(db);
  }

  /** Sets the broker password of provisioned devices, in one transaction; false for an id that is not provisioned. */
  setDevices(logins: readonly { deviceId: string; passwordHash: string }[]): boolean[] {
    const update = this.#statements.get('UPDATE devices SET broker_password = ? WHERE id = ?');
    return this.#db.transaction(() =>
      logins.map((l) => update.run(l.passwordHash, l.deviceId).changes > 0),
    )();
  }

  /** Sets a reader's broker password; false when there is no such reader. */
  setReader(name: string, passwordHash: string): boolean {
    return (
      this.#statements
        .get('UPDATE mqtt_readers SET broker_password = ? WHERE name = ?')
        .run(passwordHash, name).changes > 0
    );
  }

  /** Every provisioned device's login, by id. */
  devices(): DeviceBrokerLogin[] {
    return (
      this.#statements.get('SELECT id, broker_password AS hash FROM devices ORDER BY id').all() as {
        id: string;
        hash: string | null;
      }[]
    ).map((r) => ({ deviceId: r.id, passwordHash: r.hash }));
  }

  /** Every reader's login and grant, by name. */
  readers(): ReaderBrokerLogin[] {
    return (
      this.#statements
        .get('SELECT name, broker_password AS hash, devices FROM mqtt_readers ORDER BY name')
        .all() as { name: string; hash: string | null; devices: string }[]
    ).map((r) => {
      const devices = JSON.parse(r.devices) as string[];
      return {
        name: r.name,
        passwordHash: r.hash,
        devices: devices.length === 1 && devices[0] === '*' ? '*' : devices,
      };
    });
  }
}
