import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';
import { readOrCreateSecretKey } from '../signing/secret-key-file.ts';

/** What an enrolment token lets its holder do: provision this one device id, with these labels, until then. */
export interface EnrolmentGrant {
  deviceId: string;
  labels: Record<string, string>;
  /** Unix seconds. */
  expiresAtSec: number;
}

/** A grant as a verified token carries it: with its own id and time of issue. */
export interface IssuedEnrolmentGrant extends EnrolmentGrant {
  /** Random, names the token in the audit log (never the token itself). */
  tokenId: string;
  /** Unix seconds. */
  issuedAtSec: number;
}

const PREFIX = 'lse1.';
/** Longest lifetime an enrolment token may be given. */
export const MAX_ENROLMENT_TTL_SEC = 7 * 24 * 3600;

/**
 * One-device enrolment tokens for installers: `lse1.<grant>.<hmac>`, signed
 * with a key in the data dir (`enrolment.key`, 0600). The token itself is not
 * stored: it can provision only its own device id, and expires on its own.
 * That it works once, and never brings back a device decommissioned after it
 * was issued, the provisioning route checks against the audit log.
 */
export class EnrolmentTokens {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length < 16)
      throw new LinesightError('ERR_CLOUD_CONFIG', 'enrolment signing key is too short');
    this.#key = key;
  }

  static async open(path: string): Promise<EnrolmentTokens> {
    return new EnrolmentTokens(await readOrCreateSecretKey(path));
  }

  /** True when the text has an enrolment token's shape (checked before any lookup). */
  static looksLikeOne(text: string): boolean {
    return text.startsWith(PREFIX);
  }

  issue(
    grant: EnrolmentGrant,
    nowSec = Math.floor(Date.now() / 1000),
  ): { token: string; tokenId: string } {
    const tokenId = randomBytes(9).toString('base64url');
    const body = Buffer.from(
      JSON.stringify({
        id: grant.deviceId,
        labels: grant.labels,
        exp: grant.expiresAtSec,
        iat: nowSec,
        jti: tokenId,
      }),
    ).toString('base64url');
    return { token: `${PREFIX}${body}.${this.#mac(body)}`, tokenId };
  }

  /** The grant of a token this cloud signed that has not expired; undefined otherwise. */
  verify(token: string, nowSec = Math.floor(Date.now() / 1000)): IssuedEnrolmentGrant | undefined {
    if (!token.startsWith(PREFIX) || token.length > 4096) return undefined;
    const [body = '', mac = '', ...rest] = token.slice(PREFIX.length).split('.');
    if (rest.length > 0 || !/^[0-9a-f]{64}$/.test(mac)) return undefined;
    const expected = Buffer.from(this.#mac(body), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) return undefined;
    let parsed: { id?: unknown; labels?: unknown; exp?: unknown; iat?: unknown; jti?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof parsed;
    } catch {
      return undefined;
    }
    const { id, exp, iat, jti } = parsed;
    if (typeof id !== 'string' || typeof exp !== 'number') return undefined;
    if (typeof iat !== 'number' || typeof jti !== 'string') return undefined;
    if (exp <= nowSec) return undefined;
    return {
      deviceId: id,
      labels: (parsed.labels ?? {}) as Record<string, string>,
      expiresAtSec: exp,
      issuedAtSec: iat,
      tokenId: jti,
    };
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#key).update(`enrolment\n${body}`).digest('hex');
  }
}
