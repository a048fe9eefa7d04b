import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRegistryDatabase } from './database.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-db-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('openRegistryDatabase', () => {
  it('creates the database and its WAL and shared-memory files with mode 0600', async () => {
    const path = join(dir, 'registry.sqlite');
    const db = openRegistryDatabase(path);
    try {
      db.prepare(
        "INSERT INTO audit_log (at, actor, action, subject) VALUES ('t', 'a', 'b', 'c')",
      ).run();
      for (const file of [path, `${path}-wal`, `${path}-shm`])
        expect(await modeOf(file)).toBe(0o600);
    } finally {
      db.close();
    }
  });

  it('repairs the mode of a database created world-readable by an older version', async () => {
    const path = join(dir, 'registry.sqlite');
    openRegistryDatabase(path).close();
    await chmod(path, 0o644);
    const db = openRegistryDatabase(path);
    db.close();
    expect(await modeOf(path)).toBe(0o600);
  });

  it('seeds the models devices may download from the desired states of an older database', async () => {
    const path = join(dir, 'registry.sqlite');
    const old = openRegistryDatabase(path);
    // Back to the schema before device_assignments, holding one device with a desired state.
    old.exec(
      'DROP TABLE device_assignments; ALTER TABLE api_tokens DROP COLUMN role; DROP TABLE mqtt_readers; DROP TABLE revoked_certificates; ALTER TABLE devices DROP COLUMN broker_password',
    );
    old.pragma('user_version = 3');
    old
      .prepare("INSERT INTO devices (id, secret_sha256, created_at) VALUES ('d1', 'x', 't')")
      .run();
    const manifest = (version: string) => ({ signed: { manifest: { name: 'm', version } } });
    old
      .prepare('INSERT INTO desired_states (device_id, revision, document) VALUES (?, ?, ?)')
      .run('d1', 7, JSON.stringify({ model: manifest('2.0.0'), shadow: manifest('3.0.0-rc.1') }));
    old.close();
    const db = openRegistryDatabase(path);
    try {
      expect(
        db
          .prepare('SELECT * FROM device_assignments ORDER BY model_version')
          .all()
          .map((r) => ({ ...(r as object) })),
      ).toEqual([
        { device_id: 'd1', model_name: 'm', model_version: '2.0.0', revision: 7 },
        { device_id: 'd1', model_name: 'm', model_version: '3.0.0-rc.1', revision: 7 },
      ]);
    } finally {
      db.close();
    }
  });

  it('gives tokens made before roles the operator role', async () => {
    const path = join(dir, 'registry.sqlite');
    const old = openRegistryDatabase(path);
    old.exec(
      'ALTER TABLE api_tokens DROP COLUMN role; DROP TABLE mqtt_readers; DROP TABLE revoked_certificates; ALTER TABLE devices DROP COLUMN broker_password',
    );
    old.pragma('user_version = 4');
    old
      .prepare(
        "INSERT INTO api_tokens (token_sha256, actor, created_at, created_by) VALUES ('h', 'ann', 't', 'admin')",
      )
      .run();
    old.close();
    const db = openRegistryDatabase(path);
    try {
      expect(db.prepare('SELECT actor, role FROM api_tokens').all()).toEqual([
        { actor: 'ann', role: 'operator' },
      ]);
      expect(() =>
        db
          .prepare(
            "INSERT INTO api_tokens (token_sha256, actor, role, created_at, created_by) VALUES ('i', 'bo', 'root', 't', 'admin')",
          )
          .run(),
      ).toThrow(/CHECK/);
    } finally {
      db.close();
    }
  });
});
