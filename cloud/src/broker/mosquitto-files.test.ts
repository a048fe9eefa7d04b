import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEVICE_CHANNELS, deviceTopic, allDevicesFilter } from '@linesight/protocol';
import { canPublish, canSubscribe, type MqttIdentity } from './acl.ts';
import { EmbeddedBroker } from './embedded-broker.ts';
import {
  FILES_READER_PREFIX,
  MOSQUITTO_ACL_FILE,
  MOSQUITTO_PASSWORD_FILE,
  MosquittoFiles,
  RELOAD_PROBE_USERNAME,
  renderAclFile,
  renderPasswordFile,
  type MosquittoLogins,
} from './mosquitto-files.ts';
import { checkMosquittoPassword, mosquittoPasswordHash } from './mosquitto-password.ts';
import { BrokerPasswords } from '../registry/broker-passwords.ts';
import { openRegistryDatabase, type RegistryDatabase } from '../registry/database.ts';
import { DeviceRegistry } from '../registry/device-registry.ts';
import { MqttReaders } from '../registry/mqtt-readers.ts';

/** MQTT topic matching (a filter with + and # against a topic), as Mosquitto does it. */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Mosquitto 2.0's acl_file check (security_default.c) for one login: its user block
 * (denials first), then the patterns with %u replaced. `access` 'write' is a publish,
 * 'read' a delivery.
 */
function mosquittoAllows(acl: string, username: string, access: 'read' | 'write', topic: string) {
  const user: { access: string; topic: string }[] = [];
  const patterns: { access: string; topic: string }[] = [];
  let current: string | undefined;
  for (const line of acl.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [kind, ...rest] = line.split(' ');
    if (kind === 'user') current = rest.join(' ');
    else if (kind === 'pattern')
      patterns.push({ access: rest[0]!, topic: rest[1]!.replaceAll('%u', username) });
    else if (kind === 'topic' && current === username)
      user.push({ access: rest[0]!, topic: rest[1]! });
  }
  const allows = (rules: typeof user): boolean | undefined => {
    const ordered = [...rules.filter((r) => r.access === 'deny'), ...rules];
    for (const r of ordered)
      if (matches(r.topic, topic)) {
        if (r.access === 'deny') return false;
        if (r.access === access || r.access === 'readwrite') return true;
      }
    return undefined;
  };
  return allows(user) ?? allows(patterns) ?? false;
}

const hash = mosquittoPasswordHash('x');
const logins: MosquittoLogins = {
  operators: [
    { username: 'linesight-cloud', passwordHash: hash },
    { username: 'admin', passwordHash: hash },
  ],
  devices: [
    { deviceId: 'press-1', passwordHash: hash },
    { deviceId: 'press-2', passwordHash: hash },
  ],
  readers: [
    { name: 'mes', passwordHash: hash, devices: ['press-1'] },
    { name: 'all', passwordHash: hash, devices: '*' },
  ],
  probePasswordHash: hash,
};
const topics = ['press-1', 'press-2', 'press-3'].flatMap((id) =>
  DEVICE_CHANNELS.map((ch) => deviceTopic(id, ch)),
);

describe('the files Mosquitto reads', () => {
  it('holds one password line per login, the file format mosquitto_passwd writes', () => {
    const lines = renderPasswordFile(logins)
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines.map((l) => l.slice(0, l.indexOf(':')))).toEqual([
      'linesight-cloud',
      'admin',
      RELOAD_PROBE_USERNAME,
      `${FILES_READER_PREFIX}mes`,
      `${FILES_READER_PREFIX}all`,
      'press-1',
      'press-2',
    ]);
    for (const l of lines) expect(l.slice(l.indexOf(':') + 1)).toBe(hash);
  });

  it("gives a device the embedded broker's rules (acl.ts) and no more, with one pattern for the whole fleet", () => {
    const acl = renderAclFile(logins);
    // Only readers' grants name devices.
    expect(acl).not.toContain('press-2');
    const device: MqttIdentity = { kind: 'device', deviceId: 'press-1' };
    for (const topic of topics) {
      expect(mosquittoAllows(acl, 'press-1', 'write', topic), topic).toBe(
        canPublish(device, topic),
      );
      // Mosquitto grants every subscription and checks each delivery instead.
      expect(mosquittoAllows(acl, 'press-1', 'read', topic), topic).toBe(
        canSubscribe(device, topic),
      );
    }
  });

  it('lets readers read their grant only and never write; operators everything; the probe nothing', () => {
    const acl = renderAclFile(logins);
    const mes: MqttIdentity = { kind: 'reader', name: 'mes', devices: ['press-1'] };
    const all: MqttIdentity = { kind: 'reader', name: 'all', devices: '*' };
    for (const topic of topics) {
      expect(mosquittoAllows(acl, 'reader@mes', 'read', topic), topic).toBe(
        canSubscribe(mes, topic),
      );
      expect(mosquittoAllows(acl, 'reader@all', 'read', topic), topic).toBe(
        canSubscribe(all, topic),
      );
      for (const reader of ['reader@mes', 'reader@all', RELOAD_PROBE_USERNAME])
        expect(mosquittoAllows(acl, reader, 'write', topic)).toBe(false);
      expect(mosquittoAllows(acl, RELOAD_PROBE_USERNAME, 'read', topic)).toBe(false);
      expect(mosquittoAllows(acl, 'admin', 'write', topic)).toBe(true);
      expect(mosquittoAllows(acl, 'linesight-cloud', 'read', topic)).toBe(true);
    }
    // Its own slot under devices/, which the patterns would give it, is denied.
    for (const ch of DEVICE_CHANNELS)
      expect(
        mosquittoAllows(acl, 'reader@mes', 'write', `linesight/v1/devices/reader@mes/${ch}`),
      ).toBe(false);
    expect(acl).toContain(`topic read ${allDevicesFilter('results')}`);
  });
});

describe('MosquittoFiles', () => {
  let dir: string;
  let db: RegistryDatabase;
  let broker: EmbeddedBroker;
  let url: string;
  let files: MosquittoFiles;
  const logins: { username: string; password: string }[] = [];

  /** What Mosquitto would say to a login, reading the password file the cloud wrote last. */
  function check(username: string, password: string): boolean {
    const text = readFileSync(join(dir, MOSQUITTO_PASSWORD_FILE), 'utf8');
    const line = text.split('\n').find((l) => l.startsWith(`${username}:`));
    return line !== undefined && checkMosquittoPassword(line.slice(username.length + 1), password);
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-mosquitto-files-'));
    db = openRegistryDatabase(join(dir, 'registry.sqlite'));
    // A broker that reads the files at every login: as a Mosquitto reloaded at once.
    broker = new EmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      authenticate: (_clientId, username, password) => {
        logins.push({ username, password });
        return check(username, password) ? { kind: 'admin' } : undefined;
      },
    });
    url = `mqtt://127.0.0.1:${await broker.start()}`;
    files = new MosquittoFiles({
      url,
      username: 'linesight-cloud',
      password: 'cloud-pw',
      adminToken: 'admin-token',
      configDir: dir,
      store: new BrokerPasswords(db),
      logger: pino({ level: 'silent' }),
    });
  });

  afterEach(async () => {
    await files.close();
    await broker.close();
    db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes both files (0640) at start and resolves once a login with the probe password succeeds', async () => {
    await files.start();
    expect(files.writes).toBe(1);
    expect((await stat(join(dir, MOSQUITTO_PASSWORD_FILE))).mode & 0o777).toBe(0o640);
    expect((await stat(join(dir, MOSQUITTO_ACL_FILE))).mode & 0o777).toBe(0o640);
    expect(check('linesight-cloud', 'cloud-pw')).toBe(true);
    expect(check('admin', 'admin-token')).toBe(true);
    expect(logins.at(-1)?.username).toBe(RELOAD_PROBE_USERNAME);
  });

  it('coalesces a burst: the changes that arrive during a write share the next one', async () => {
    await files.start();
    const devices = new DeviceRegistry(db);
    const created = Array.from({ length: 20 }, (_, i) => devices.provision(`cell-${i}`));
    await Promise.all(created.map((d) => files.setDevice(d.id, d.secret)));
    // The first starts a write at once; the 19 others wait for it and share the next.
    expect(files.writes).toBe(1 + 2);
    for (const d of created) expect(check(d.id, d.secret)).toBe(true);
    expect(check('cell-0', 'wrong')).toBe(false);

    devices.remove('cell-3');
    await files.removeDevice();
    expect(check('cell-3', created[3]!.secret)).toBe(false);
    expect(files.missingDevices()).toEqual([]);
    devices.provision('cell-old');
    expect(files.missingDevices()).toEqual(['cell-old']);
  });

  it("keeps readers' passwords and refuses a device id that is the cloud's login", async () => {
    await files.start();
    const readers = new MqttReaders(db);
    const reader = readers.create('mes', ['cell-1'], 'test');
    await files.setReader(reader.name, reader.password);
    expect(check(`${FILES_READER_PREFIX}mes`, reader.password)).toBe(true);
    await expect(files.setReader('nobody', 'x')).rejects.toMatchObject({
      code: 'ERR_CLOUD_NOT_FOUND',
    });
    await expect(files.setDevice('linesight-cloud', 'x')).rejects.toMatchObject({
      code: 'ERR_CLOUD_CONFLICT',
    });
  });

  it('says when the broker does not take the new files in time', async () => {
    const stuck = new MosquittoFiles({
      url,
      username: 'linesight-cloud',
      password: 'cloud-pw',
      adminToken: 'admin-token',
      configDir: join(dir, 'elsewhere'),
      pidFile: join(dir, 'no-such.pid'),
      store: new BrokerPasswords(db),
      logger: pino({ level: 'silent' }),
    });
    await expect(stuck.start()).rejects.toThrow(/pid file .*no-such\.pid/);
  });
});
