import { describe, expect, it } from 'vitest';
import { openRegistryDatabase } from './database.ts';
import { AuditLog } from './audit-log.ts';

describe('AuditLog', () => {
  it('appends, lists newest first with filters, and refuses updates and deletes', () => {
    const db = openRegistryDatabase(':memory:');
    const audit = new AuditLog(db);
    audit.record('alice', 'model.register', 'm@1.0.0', { sha256: 'x' });
    audit.record('bob', 'model.approve', 'm@1.0.0');
    audit.record('alice', 'model.stage', 'm@1.0.0', { to: 'production' });
    expect(audit.list().map((e) => e.action)).toEqual([
      'model.stage',
      'model.approve',
      'model.register',
    ]);
    expect(audit.list({ actor: 'bob' })).toHaveLength(1);
    expect(audit.list({ subject: 'm@1.0.0', limit: 2 })).toHaveLength(2);
    expect(audit.list({ action: 'model.register' })[0]?.details).toEqual({ sha256: 'x' });
    expect(() => db.prepare("UPDATE audit_log SET actor = 'mallory'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
    db.close();
  });
});
