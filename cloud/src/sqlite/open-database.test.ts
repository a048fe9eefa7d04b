import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from './open-database.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('openDatabase', () => {
  it('creates its folder, runs each migration once, and only the new ones after an upgrade', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'open-database-'));
    dirs.push(dir);
    const path = join(dir, 'nested', 'store.sqlite');
    const v1 = ['CREATE TABLE a (id INTEGER PRIMARY KEY)'];
    const first = openDatabase(path, { migrations: v1 });
    first.prepare('INSERT INTO a (id) VALUES (1)').run();
    expect(first.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(first.pragma('user_version', { simple: true })).toBe(1);
    first.close();
    // Reopened with a second step: the first does not run again (it would fail: table exists).
    const v2 = [...v1, 'CREATE TABLE b (a_id INTEGER REFERENCES a(id))'];
    const second = openDatabase(path, { migrations: v2, foreignKeys: true });
    expect(second.pragma('user_version', { simple: true })).toBe(2);
    expect(second.prepare('SELECT COUNT(*) AS n FROM a').get()).toEqual({ n: 1 });
    expect(() => second.prepare('INSERT INTO b (a_id) VALUES (9)').run()).toThrow(/FOREIGN KEY/);
    second.close();
  });

  it('keeps the steps before a failing migration and none of the failing one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'open-database-'));
    dirs.push(dir);
    const path = join(dir, 'store.sqlite');
    const ok = 'CREATE TABLE ok (id INTEGER)';
    expect(() =>
      openDatabase(path, { migrations: [ok, 'CREATE TABLE half (id INTEGER); SELECT nope'] }),
    ).toThrow(/nope/);
    const db = openDatabase(path, { migrations: [ok] });
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    expect(tables).toEqual([{ name: 'ok' }]);
    db.close();
  });
});
