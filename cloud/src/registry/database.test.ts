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
});
