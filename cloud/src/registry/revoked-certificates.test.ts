import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRegistryDatabase } from './database.ts';
import { RevokedCertificates } from './revoked-certificates.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-revoked-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('RevokedCertificates', () => {
  it('refuses revoked fingerprints only, counts refusals by protocol and keeps the first record', () => {
    const db = openRegistryDatabase(join(dir, 'registry.sqlite'));
    try {
      const revoked = new RevokedCertificates(db);
      expect(revoked.refuses(A, 'mqtt')).toBe(false);
      const first = revoked.revoke('dev-1', A, 'ann', 'stolen');
      expect(first).toMatchObject({
        alreadyRevoked: false,
        record: { deviceId: 'dev-1', fingerprintSha256: A, revokedBy: 'ann', reason: 'stolen' },
      });
      const again = revoked.revoke('dev-1', A, 'bo');
      expect(again).toEqual({ alreadyRevoked: true, record: first.record });
      expect(revoked.refuses(A, 'mqtt')).toBe(true);
      expect(revoked.refuses(A, 'https')).toBe(true);
      expect(revoked.refuses(B, 'https')).toBe(false);
      expect(revoked.refusals).toEqual({ mqtt: 1, https: 1 });
      expect(revoked.list('dev-1').map((r) => r.fingerprintSha256)).toEqual([A]);
      expect(revoked.list('dev-2')).toEqual([]);
      expect(() => revoked.revoke('dev-1', 'short', 'ann')).toThrow(/CHECK/);
    } finally {
      db.close();
    }
  });

  it('keeps revocations across reopening and after the device is decommissioned', () => {
    const path = join(dir, 'registry.sqlite');
    const db = openRegistryDatabase(path);
    db.prepare(
      "INSERT INTO devices (id, secret_sha256, created_at) VALUES ('dev-1', 'x', 't')",
    ).run();
    new RevokedCertificates(db).revoke('dev-1', A, 'ann');
    db.prepare("DELETE FROM devices WHERE id = 'dev-1'").run();
    db.close();
    const reopened = openRegistryDatabase(path);
    try {
      expect(new RevokedCertificates(reopened).isRevoked(A)).toBe(true);
    } finally {
      reopened.close();
    }
  });
});
