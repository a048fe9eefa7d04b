import type Database from 'better-sqlite3';
import type { RegistryDatabase } from './database.ts';
import type { MetricSample } from '../metrics.ts';
import { StatementCache } from './statement-cache.ts';

/** A client certificate the cloud refuses. */
export interface RevokedCertificate {
  deviceId: string;
  /** SHA-256 of the DER certificate, lower-case hex. */
  fingerprintSha256: string;
  revokedAt: string;
  revokedBy: string;
  reason: string | null;
}

interface RevokedRow {
  device_id: string;
  fingerprint_sha256: string;
  revoked_at: string;
  revoked_by: string;
  reason: string | null;
}

/** Where a login with a revoked certificate was refused. */
export type CertificateLoginProtocol = 'mqtt' | 'https';

/**
 * Client certificates revoked while their device stays in service (a stolen or leaked
 * certificate; the device gets a new one from the plant's CA), by SHA-256 fingerprint,
 * in SQLite. A revoked certificate is refused for every device it names, and counted.
 */
export class RevokedCertificates {
  readonly #statements: StatementCache;
  /** Logins refused because the certificate is revoked, by protocol. */
  readonly refusals: Record<CertificateLoginProtocol, number> = { mqtt: 0, https: 0 };

  constructor(db: RegistryDatabase) {
    this.#statements = new StatementCache(db);
  }

  #prepare(sql: string): Database.Statement {
    return this.#statements.get(sql);
  }

  /**
   * Revokes a certificate of a device (fingerprint in lower-case hex). Revoking it again
   * keeps the first record and says so.
   */
  revoke(
    deviceId: string,
    fingerprintSha256: string,
    revokedBy: string,
    reason?: string,
  ): { record: RevokedCertificate; alreadyRevoked: boolean } {
    const inserted = this.#prepare(
      // Not INSERT OR IGNORE: that would also skip a row failing its CHECK.
      `INSERT INTO revoked_certificates (device_id, fingerprint_sha256, revoked_at, revoked_by, reason)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, fingerprint_sha256) DO NOTHING`,
    ).run(deviceId, fingerprintSha256, new Date().toISOString(), revokedBy, reason ?? null).changes;
    const row = this.#prepare(
      'SELECT * FROM revoked_certificates WHERE device_id = ? AND fingerprint_sha256 = ?',
    ).get(deviceId, fingerprintSha256) as RevokedRow;
    return { record: fromRow(row), alreadyRevoked: inserted === 0 };
  }

  /** True when this certificate was revoked (for any device). */
  isRevoked(fingerprintSha256: string): boolean {
    return (
      this.#prepare('SELECT 1 FROM revoked_certificates WHERE fingerprint_sha256 = ?').get(
        fingerprintSha256,
      ) !== undefined
    );
  }

  /** True, and counted, when a login over `protocol` with this certificate must be refused. */
  refuses(fingerprintSha256: string, protocol: CertificateLoginProtocol): boolean {
    if (!this.isRevoked(fingerprintSha256)) return false;
    this.refusals[protocol]++;
    return true;
  }

  /** A device's revoked certificates, newest first. */
  list(deviceId: string): RevokedCertificate[] {
    const rows = this.#prepare(
      'SELECT * FROM revoked_certificates WHERE device_id = ? ORDER BY revoked_at DESC, fingerprint_sha256',
    ).all(deviceId) as RevokedRow[];
    return rows.map(fromRow);
  }

  /** The refusal counter for /metrics. */
  metrics(): MetricSample[] {
    return [
      {
        name: 'linesight_revoked_certificate_refusals_total',
        help: 'Device logins refused because their client certificate was revoked, by protocol',
        type: 'counter',
        values: (Object.keys(this.refusals) as CertificateLoginProtocol[]).map((protocol) => ({
          labels: { protocol },
          value: this.refusals[protocol],
        })),
      },
    ];
  }
}

function fromRow(row: RevokedRow): RevokedCertificate {
  return {
    deviceId: row.device_id,
    fingerprintSha256: row.fingerprint_sha256,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    reason: row.reason,
  };
}
