import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { Logger } from 'pino';
import {
  DEVICE_PUBLISH_CHANNELS,
  DEVICE_SUBSCRIBE_CHANNELS,
  LinesightError,
  TOPIC_ROOT,
  allDevicesFilter,
  deviceTopic,
  deviceTopicPattern,
} from '@linesight/protocol';
import { writeFileAtomic } from '@linesight/durable-fs';
import { READER_CHANNELS } from './acl.ts';
import type { BrokerAccounts } from './broker-accounts.ts';
import { mosquittoPasswordHash } from './mosquitto-password.ts';
import type { BrokerPasswords } from '../registry/broker-passwords.ts';
import type { ReaderGrant } from '../registry/mqtt-readers.ts';

/** The password file the cloud writes in the shared folder (Mosquitto's `password_file`). */
export const MOSQUITTO_PASSWORD_FILE = 'linesight-passwords';
/** The ACL file the cloud writes beside it (Mosquitto's `acl_file`). */
export const MOSQUITTO_ACL_FILE = 'linesight-acl';
/** The operators' MQTT login (password: the admin token), as on the embedded broker. */
export const FILES_ADMIN_USERNAME = 'admin';
/**
 * A reader's username in a password file: `reader@<name>`. Mosquitto reads a
 * line as `username:hash`, so the colon of `reader:<name>` cannot be there; no
 * device id holds an `@`, so a reader still cannot take a device's name.
 */
export const FILES_READER_PREFIX = 'reader@';
/** The login whose password each write changes: logging in with the new one shows the broker applied the files. */
export const RELOAD_PROBE_USERNAME = 'linesight@reload-probe';

/** A login with all it needs in the two files. */
export interface MosquittoLogins {
  /** Logins that may publish and subscribe under every Linesight topic: the cloud's own, the operators'. */
  operators: readonly { username: string; passwordHash: string }[];
  /** One login per device, username = device id. */
  devices: readonly { deviceId: string; passwordHash: string }[];
  /** One login per reader, username FILES_READER_PREFIX + name. */
  readers: readonly { name: string; passwordHash: string; devices: ReaderGrant }[];
  /** The reload probe's hash of this write (it may do nothing). */
  probePasswordHash: string;
}

/** Mosquitto's `password_file`: one `username:$7$...` line per login. */
export function renderPasswordFile(logins: MosquittoLogins): string {
  const lines = [
    '# Written by the Linesight cloud (--mqtt-accounts files) at every change; edits are lost.',
    ...logins.operators.map((l) => `${l.username}:${l.passwordHash}`),
    `${RELOAD_PROBE_USERNAME}:${logins.probePasswordHash}`,
    ...logins.readers.map((r) => `${FILES_READER_PREFIX}${r.name}:${r.passwordHash}`),
    ...logins.devices.map((d) => `${d.deviceId}:${d.passwordHash}`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Mosquitto's `acl_file`: the embedded broker's rules (acl.ts). Devices get
 * them from `pattern` lines with `%u`, so the file does not grow with the
 * fleet; operators and readers from their `user` blocks. Mosquitto 2.0 checks
 * a publish when it is sent and again when delivered (`read`); it grants every
 * subscription, so a filter outside a login's topics receives nothing.
 * Patterns apply to every login, so each user block denies its own slot under
 * `devices/` (no device id can equal those usernames).
 */
export function renderAclFile(logins: MosquittoLogins): string {
  const lines = [
    '# Written by the Linesight cloud (--mqtt-accounts files) at every change; edits are lost.',
    '# Every device (username = device id): its own publish channels, its own desired state.',
    ...DEVICE_PUBLISH_CHANNELS.map((ch) => `pattern write ${deviceTopicPattern('%u', ch)}`),
    ...DEVICE_SUBSCRIBE_CHANNELS.map((ch) => `pattern read ${deviceTopicPattern('%u', ch)}`),
  ];
  for (const { username } of logins.operators)
    lines.push('', `user ${username}`, `topic readwrite ${TOPIC_ROOT}/#`);
  lines.push('', `user ${RELOAD_PROBE_USERNAME}`, 'topic deny #');
  for (const reader of logins.readers) {
    const username = `${FILES_READER_PREFIX}${reader.name}`;
    lines.push(
      '',
      `user ${username}`,
      ...[...DEVICE_PUBLISH_CHANNELS, ...DEVICE_SUBSCRIBE_CHANNELS].map(
        (ch) => `topic deny ${deviceTopicPattern(username, ch)}`,
      ),
    );
    for (const ch of READER_CHANNELS)
      if (reader.devices === '*') lines.push(`topic read ${allDevicesFilter(ch)}`);
      else for (const id of reader.devices) lines.push(`topic read ${deviceTopic(id, ch)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Options of the file-managed Mosquitto. */
export interface MosquittoFilesOptions {
  /** Where the cloud logs in (its own listener): the reload probe logs in there too. */
  url: string;
  /** The cloud's own login, written into the file with every Linesight topic. */
  username: string;
  password: string;
  /** Password of the operators' `admin` login. */
  adminToken: string;
  /** The folder shared with the broker, where the two files go. */
  configDir: string;
  /** Mosquitto's pid file (its `pid_file`): the cloud sends SIGHUP to that process after each write. Without it, something else must reload the broker (a systemd path unit). */
  pidFile?: string;
  store: BrokerPasswords;
  logger: Logger;
  /** How long a write may wait for the broker to apply it (default 60 s). */
  reloadTimeoutMs?: number;
}

interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * A Mosquitto whose logins and ACLs live in a `password_file` and an `acl_file`
 * that the cloud writes from the registry, atomically, into a folder shared
 * with the broker, and then has the broker reload (SIGHUP). A reload checks
 * every live session against the new files, so a removed login or a changed
 * password ends its session. Changes that arrive while a write is under way
 * share the next write: a burst of provisionings costs one write and one
 * reload. Each call resolves once a login with the probe's new password
 * succeeds, i.e. once the broker runs with files holding the change.
 */
export class MosquittoFiles implements BrokerAccounts {
  readonly #o: MosquittoFilesOptions;
  #operators: { username: string; passwordHash: string }[] = [];
  /** The write waiting to start (callers join it) and whether one runs. */
  #next: Batch | undefined;
  #writing = false;
  #closed = false;
  /** Writes done (for logs and tests). */
  writes = 0;

  constructor(options: MosquittoFilesOptions) {
    this.#o = options;
  }

  /** Writes the files from the registry and waits until the broker runs with them. */
  async start(): Promise<void> {
    this.#operators = [
      { username: this.#o.username, passwordHash: mosquittoPasswordHash(this.#o.password) },
      { username: FILES_ADMIN_USERNAME, passwordHash: mosquittoPasswordHash(this.#o.adminToken) },
    ];
    await this.#sync();
    this.#o.logger.info(
      { url: this.#o.url, configDir: this.#o.configDir, pidFile: this.#o.pidFile ?? null },
      'managing logins on the external broker (password and ACL files)',
    );
  }

  /** Of the provisioned devices, those without a broker password (provisioned before the switch). */
  missingDevices(): string[] {
    return this.#o.store
      .devices()
      .filter((d) => d.passwordHash === null)
      .map((d) => d.deviceId);
  }

  async setDevice(deviceId: string, secret: string): Promise<void> {
    await this.setDevices([{ deviceId, secret }]);
  }

  async setDevices(devices: readonly { deviceId: string; secret: string }[]): Promise<void> {
    const reserved = devices.filter((d) => this.#reserved(d.deviceId));
    if (reserved.length > 0)
      throw new LinesightError(
        'ERR_CLOUD_CONFLICT',
        `device id ${reserved.map((d) => d.deviceId).join(', ')} is a login of the cloud or the operators on the broker: choose another id`,
      );
    this.#o.store.setDevices(
      devices.map((d) => ({ deviceId: d.deviceId, passwordHash: mosquittoPasswordHash(d.secret) })),
    );
    await this.#sync();
  }

  async removeDevice(): Promise<void> {
    // The registry's row (and the password with it) is gone: a write without it.
    await this.#sync();
  }

  async setReader(name: string, password: string): Promise<void> {
    // The grant is in the reader's registry row already.
    if (!this.#o.store.setReader(name, mosquittoPasswordHash(password)))
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `no reader ${name}`);
    await this.#sync();
  }

  async removeReader(): Promise<void> {
    await this.#sync();
  }

  readerUsername(name: string): string {
    return `${FILES_READER_PREFIX}${name}`;
  }

  /** Fails writes not yet started; one under way finishes. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    const next = this.#next;
    this.#next = undefined;
    next?.reject(new LinesightError('ERR_CLOUD_NOT_STARTED', 'the cloud is closing'));
    return Promise.resolve();
  }

  #reserved(deviceId: string): boolean {
    return this.#operators.some((o) => o.username === deviceId);
  }

  /** Joins the next write (starting it when none runs) and resolves once the broker applied it. */
  #sync(): Promise<void> {
    if (this.#closed)
      return Promise.reject(new LinesightError('ERR_CLOUD_NOT_STARTED', 'the cloud is closing'));
    if (this.#next === undefined) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#next = { promise, resolve, reject };
    }
    const { promise } = this.#next;
    if (!this.#writing) void this.#drain();
    return promise;
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      for (let batch = this.#next; batch !== undefined; batch = this.#next) {
        // Changes made from now on wait for the next write: this one may have read the registry before them.
        this.#next = undefined;
        try {
          await this.#writeAndReload();
          batch.resolve();
        } catch (err) {
          batch.reject(err as Error);
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async #writeAndReload(): Promise<void> {
    const startedAt = Date.now();
    const probePassword = randomBytes(18).toString('base64url');
    const logins: MosquittoLogins = {
      operators: this.#operators,
      devices: this.#o.store
        .devices()
        .filter(
          (d): d is { deviceId: string; passwordHash: string } =>
            d.passwordHash !== null && !this.#reserved(d.deviceId),
        ),
      readers: this.#o.store
        .readers()
        .filter(
          (r): r is { name: string; passwordHash: string; devices: ReaderGrant } =>
            r.passwordHash !== null,
        ),
      probePasswordHash: mosquittoPasswordHash(probePassword),
    };
    try {
      // The broker reads both at a reload: the ACL first, so no login is ever in the password
      // file without its rules (a broker restarting between the two sees the old or new ones).
      await writeFileAtomic(join(this.#o.configDir, MOSQUITTO_ACL_FILE), renderAclFile(logins), {
        mode: 0o640,
      });
      await writeFileAtomic(
        join(this.#o.configDir, MOSQUITTO_PASSWORD_FILE),
        renderPasswordFile(logins),
        { mode: 0o640 },
      );
    } catch (cause) {
      throw new LinesightError(
        'ERR_CLOUD_BROKER',
        `cannot write the broker's password and ACL files in ${this.#o.configDir}: ${(cause as Error).message}`,
        { cause },
      );
    }
    await this.#signal();
    await this.#waitForProbe(probePassword);
    this.writes++;
    this.#o.logger.debug(
      {
        event: 'broker.files_applied',
        devices: logins.devices.length,
        readers: logins.readers.length,
        ms: Date.now() - startedAt,
      },
      'the broker runs with the new password and ACL files',
    );
  }

  /** SIGHUP to the broker named by the pid file (read each time: a restarted broker has a new pid). */
  async #signal(): Promise<void> {
    const pidFile = this.#o.pidFile;
    if (pidFile === undefined) return;
    let pid: number;
    try {
      pid = Number.parseInt((await readFile(pidFile, 'utf8')).trim(), 10);
    } catch (cause) {
      throw new LinesightError(
        'ERR_CLOUD_BROKER',
        `cannot read mosquitto's pid file ${pidFile} (its pid_file setting; is mosquitto running?): ${(cause as Error).message}`,
        { cause },
      );
    }
    if (!Number.isInteger(pid) || pid <= 1)
      throw new LinesightError(
        'ERR_CLOUD_BROKER',
        `mosquitto's pid file ${pidFile} does not hold a process id`,
      );
    try {
      process.kill(pid, 'SIGHUP');
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      throw new LinesightError(
        'ERR_CLOUD_BROKER',
        code === 'EPERM'
          ? `the cloud may not signal mosquitto (pid ${pid}): run both as the same user (mosquitto.conf: user), manifests/mosquitto/README.md`
          : `cannot signal mosquitto (pid ${pid} from ${pidFile}): ${code ?? (cause as Error).message}`,
        { cause },
      );
    }
  }

  /** Logs in as the probe with this write's password until the broker takes it (it then runs with the new files). */
  async #waitForProbe(password: string): Promise<void> {
    const timeoutMs = this.#o.reloadTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let waitMs = 5;
    let last = '';
    for (;;) {
      try {
        const client = await mqtt.connectAsync(this.#o.url, {
          clientId: `linesight-reload-probe-${process.pid}`,
          username: RELOAD_PROBE_USERNAME,
          password,
          protocolVersion: 4,
          clean: true,
          reconnectPeriod: 0,
          connectTimeout: Math.max(1000, Math.min(10_000, deadline - Date.now())),
        });
        await client.endAsync(true);
        return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (this.#closed) throw new LinesightError('ERR_CLOUD_NOT_STARTED', 'the cloud is closing');
      if (Date.now() + waitMs > deadline)
        throw new LinesightError(
          'ERR_CLOUD_BROKER',
          `the broker at ${this.#o.url} did not apply the new password file within ${timeoutMs} ms (last login: ${last}): ${this.#o.pidFile === undefined ? 'nothing reloads it (give --mosquitto-pid-file)' : `is ${this.#o.pidFile} the running broker's, and its password_file and acl_file those in ${this.#o.configDir}?`}`,
        );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      waitMs = Math.min(waitMs * 2, 200);
    }
  }
}
