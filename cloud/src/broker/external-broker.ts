import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  DEVICE_PUBLISH_CHANNELS,
  DEVICE_SUBSCRIBE_CHANNELS,
  LinesightError,
  TOPIC_ROOT,
  allDevicesFilter,
  deviceTopic,
} from '@linesight/protocol';
import { READER_CHANNELS } from './acl.ts';
import { defaultReaderUsername, type BrokerAccounts } from './broker-accounts.ts';
import { DynsecClient, type DynsecCommand, type DynsecResponse } from './dynsec-client.ts';
import { READER_PREFIX, type ReaderGrant } from '../registry/mqtt-readers.ts';

/** Role of the cloud's own sessions and of the operators' `admin` login: every Linesight topic. */
export const OPERATOR_ROLE = 'linesight-operator';
/** The operators' MQTT login (password: the admin token), as on the embedded broker. */
export const ADMIN_USERNAME = 'admin';

/** Options of the external broker. */
export interface ExternalBrokerOptions {
  /** mqtt:// or mqtts:// URL of the broker, without credentials. */
  url: string;
  /** The cloud's login: a dynamic-security admin (manifests/mosquitto/README.md). */
  username: string;
  password: string;
  /** Password of the operators' `admin` login, kept equal to the admin token. */
  adminToken: string;
  logger: Logger;
  /** How long a dynamic-security command may wait for its answer (default 15 s). */
  commandTimeoutMs?: number;
}

interface Acl {
  acltype:
    | 'publishClientSend'
    | 'publishClientReceive'
    | 'subscribeLiteral'
    | 'subscribePattern'
    | 'unsubscribeLiteral'
    | 'unsubscribePattern';
  topic: string;
  allow: boolean;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Dynamic-security errors that mean "already as wanted" (mosquitto 2.0 wording). */
const ALREADY = /already exists|already has|not found/i;

/** The role holding one device's ACL: its own publish channels, its own desired state. */
export function deviceRole(deviceId: string): string {
  return `linesight-device:${deviceId}`;
}

/** The role holding one reader's ACL. */
export function readerRole(name: string): string {
  return `linesight-reader:${name}`;
}

/** A device's ACL, the embedded broker's rules (acl.ts) as dynamic-security entries. */
export function deviceAcls(deviceId: string): Acl[] {
  return [
    ...DEVICE_PUBLISH_CHANNELS.map((ch): Acl => ({
      acltype: 'publishClientSend',
      topic: deviceTopic(deviceId, ch),
      allow: true,
    })),
    ...DEVICE_SUBSCRIBE_CHANNELS.map((ch): Acl => ({
      acltype: 'subscribeLiteral',
      topic: deviceTopic(deviceId, ch),
      allow: true,
    })),
  ];
}

/** A reader's ACL: subscribe to results and telemetry of the granted devices; `+` only with every device. */
export function readerAcls(devices: ReaderGrant): Acl[] {
  if (devices === '*')
    return READER_CHANNELS.flatMap((ch): Acl[] => [
      // The filter with `+` itself, and (as a pattern) any one device's topic.
      { acltype: 'subscribeLiteral', topic: allDevicesFilter(ch), allow: true },
      { acltype: 'subscribePattern', topic: allDevicesFilter(ch), allow: true },
    ]);
  return devices.flatMap((id) =>
    READER_CHANNELS.map((ch): Acl => ({
      acltype: 'subscribeLiteral',
      topic: deviceTopic(id, ch),
      allow: true,
    })),
  );
}

const OPERATOR_ACLS: Acl[] = [
  { acltype: 'publishClientSend', topic: `${TOPIC_ROOT}/#`, allow: true },
  { acltype: 'publishClientReceive', topic: `${TOPIC_ROOT}/#`, allow: true },
  { acltype: 'subscribePattern', topic: `${TOPIC_ROOT}/#`, allow: true },
  { acltype: 'unsubscribePattern', topic: `${TOPIC_ROOT}/#`, allow: true },
];

/**
 * An external MQTT broker (Mosquitto 2 with its dynamic-security plugin) that
 * the cloud manages over MQTT: at start it makes sure the operator role and the
 * `admin` login exist; afterwards every device and reader gets its own login
 * (username = client id) and role, with the same topic rules as the embedded
 * broker. Deleting a login or changing its password ends its live sessions
 * (the plugin kicks them).
 */
export class ExternalBroker implements BrokerAccounts {
  readonly #o: ExternalBrokerOptions;
  #client: MqttClient | undefined;
  #dynsec: DynsecClient | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ExternalBrokerOptions) {
    this.#o = options;
  }

  /** Connects as the cloud's login, checks it may manage the broker and sets up the operator role. */
  async start(): Promise<void> {
    // The plugin ends every session of a login whose roles change, so the cloud's own login
    // gets its role on a session of its own, before the sessions that stay.
    const setup = await this.#connect('setup');
    try {
      const dynsec = new DynsecClient(setup.client, this.#o.commandTimeoutMs);
      await dynsec.start();
      const tolerate = (r: DynsecResponse) => ALREADY.test(r.error ?? '');
      const [role] = await dynsec.runAll(
        [{ command: 'createRole', rolename: OPERATOR_ROLE, acls: OPERATOR_ACLS }],
        tolerate,
      );
      if (role?.error !== undefined)
        await dynsec.runAll(
          OPERATOR_ACLS.map((acl) => ({ command: 'addRoleACL', rolename: OPERATOR_ROLE, ...acl })),
          tolerate,
        );
      const [self] = await dynsec.runAll([{ command: 'getClient', username: this.#o.username }]);
      const roles = (self?.data as { client?: { roles?: { rolename: string }[] } } | undefined)
        ?.client?.roles;
      if (!roles?.some((r) => r.rolename === OPERATOR_ROLE)) {
        // The answer may never come: the plugin kicks this session as it applies the change.
        const kicked = new Promise<void>((resolve) => setup.client.once('close', () => resolve()));
        const answered = dynsec
          .run([{ command: 'addClientRole', username: this.#o.username, rolename: OPERATOR_ROLE }])
          .catch(() => undefined);
        await Promise.race([kicked, answered, delay(this.#o.commandTimeoutMs ?? 15_000)]);
      }
      dynsec.close();
    } finally {
      await setup.client.endAsync(true);
    }
    const { client } = await this.#connect('accounts');
    this.#client = client;
    this.#dynsec = new DynsecClient(client, this.#o.commandTimeoutMs);
    await this.#dynsec.start();
    const [created] = await this.#run(
      [
        {
          command: 'createClient',
          username: ADMIN_USERNAME,
          password: this.#o.adminToken,
          textname: 'Linesight operators (password: the admin token)',
          roles: [{ rolename: OPERATOR_ROLE }],
        },
      ],
      true,
    );
    // The admin token may have changed since the login was created.
    if (created?.error !== undefined)
      await this.#run([
        { command: 'setClientPassword', username: ADMIN_USERNAME, password: this.#o.adminToken },
      ]);
    this.#o.logger.info(
      { url: this.#o.url, username: this.#o.username },
      'managing logins on the external broker (dynamic security)',
    );
  }

  async #connect(purpose: string): Promise<{ client: MqttClient }> {
    const client = mqtt.connect(this.#o.url, {
      clientId: `linesight-${purpose}-${process.pid}-${Date.now().toString(36)}`,
      username: this.#o.username,
      password: this.#o.password,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: purpose === 'setup' ? 0 : 1000,
      connectTimeout: 10_000,
    });
    client.on('error', (err) =>
      this.#o.logger.warn({ err: err.message }, 'broker accounts mqtt error'),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
        client.once('close', () => reject(new Error('connection closed')));
      });
    } catch (cause) {
      client.end(true);
      throw new LinesightError(
        'ERR_CLOUD_BROKER',
        `cannot log in to the MQTT broker at ${this.#o.url} as ${this.#o.username}: ${(cause as Error).message}`,
        { cause },
      );
    }
    return { client };
  }

  /** Of these device ids, the ones without a login on the broker (provisioned before the switch to it). */
  async missingDevices(deviceIds: readonly string[]): Promise<string[]> {
    const [answer] = await this.#run([{ command: 'listClients', count: -1 }]);
    const names = (answer?.data as { clients?: unknown[] } | undefined)?.clients ?? [];
    const known = new Set(names.filter((n): n is string => typeof n === 'string'));
    return deviceIds.filter((id) => !known.has(id));
  }

  async setDevice(deviceId: string, secret: string): Promise<void> {
    await this.#ensureRole(deviceRole(deviceId), deviceAcls(deviceId));
    await this.#setClient(deviceId, secret, deviceRole(deviceId));
  }

  /**
   * Provisions many devices' logins: every role in as few messages as fit, then every
   * login. Mosquitto 2.0's plugin still rewrites its configuration file after each
   * command, so this saves round trips, not the broker's own work (docs/scaling.md).
   */
  async setDevices(devices: readonly { deviceId: string; secret: string }[]): Promise<void> {
    await this.#ensureRoles(devices.map((d) => [deviceRole(d.deviceId), deviceAcls(d.deviceId)]));
    await this.#setClients(
      devices.map((d) => ({
        username: d.deviceId,
        password: d.secret,
        rolename: deviceRole(d.deviceId),
      })),
    );
  }

  async removeDevice(deviceId: string): Promise<void> {
    await this.#run(
      [
        { command: 'deleteClient', username: deviceId },
        { command: 'deleteRole', rolename: deviceRole(deviceId) },
      ],
      true,
    );
  }

  async setReader(name: string, password: string, devices: ReaderGrant): Promise<void> {
    await this.#ensureRole(readerRole(name), readerAcls(devices));
    await this.#setClient(`${READER_PREFIX}${name}`, password, readerRole(name));
  }

  async removeReader(name: string): Promise<void> {
    await this.#run(
      [
        { command: 'deleteClient', username: `${READER_PREFIX}${name}` },
        { command: 'deleteRole', rolename: readerRole(name) },
      ],
      true,
    );
  }

  readerUsername(name: string): string {
    return defaultReaderUsername(name);
  }

  /** Disconnects; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#dynsec?.close();
      if (this.#client !== undefined) await this.#client.endAsync(true);
    })();
    return this.#closing;
  }

  /** A login bound to its own client id (so no one else can take over its session), with one role. */
  async #setClient(username: string, password: string, rolename: string): Promise<void> {
    await this.#setClients([{ username, password, rolename }]);
  }

  /** Logins as #setClient makes them, many at once. */
  async #setClients(
    logins: readonly { username: string; password: string; rolename: string }[],
  ): Promise<void> {
    const created = await this.#run(
      logins.map(({ username, password, rolename }) => ({
        command: 'createClient',
        username,
        clientid: username,
        password,
        roles: [{ rolename }],
      })),
      true,
    );
    // Those that exist (a rotated secret, or a retry): set the password; the plugin ends their live sessions.
    const existing = logins.filter((_, i) => created[i]?.error !== undefined);
    if (existing.length > 0)
      await this.#run(
        existing.map(({ username, password }) => ({
          command: 'setClientPassword',
          username,
          password,
        })),
      );
  }

  /** Creates a role with these ACLs; an existing one gets any missing ACL added (others it has stay). */
  async #ensureRole(rolename: string, acls: readonly Acl[]): Promise<void> {
    await this.#ensureRoles([[rolename, acls]]);
  }

  /** Roles as #ensureRole makes them, many at once. */
  async #ensureRoles(roles: readonly (readonly [string, readonly Acl[]])[]): Promise<void> {
    const created = await this.#run(
      roles.map(([rolename, acls]) => ({ command: 'createRole', rolename, acls })),
      true,
    );
    const existing = roles.filter((_, i) => created[i]?.error !== undefined);
    if (existing.length > 0)
      await this.#run(
        existing.flatMap(([rolename, acls]) =>
          acls.map((acl) => ({ command: 'addRoleACL', rolename, ...acl })),
        ),
        true,
      );
  }

  /** Runs commands; errors other than "already so" fail (all of them unless `tolerant`). */
  async #run(commands: DynsecCommand[], tolerant = false): Promise<DynsecResponse[]> {
    if (this.#dynsec === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_STARTED', 'the external broker is not started');
    return this.#dynsec.runAll(commands, (r) => tolerant && ALREADY.test(r.error ?? ''));
  }
}
