import { createHmac, timingSafeEqual } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';
import { readOrCreateSecretKey } from '../signing/secret-key-file.ts';

/** What a signed local-store URL grants: one method on one key, until `expiresAtSec`. */
export interface SignedGrant {
  method: 'PUT' | 'GET';
  key: string;
  /** Exact body size and sha256 for PUT; empty for GET. */
  bytes?: number;
  sha256?: string;
  contentType?: string;
  /** Unix seconds. */
  expiresAtSec: number;
}

const KEY_BYTES = 32;

/**
 * HMAC-SHA256 signatures for the local blob store's upload and download URLs,
 * with a key the cloud keeps in its data dir (0600), so URLs survive restarts.
 */
export class UrlSigner {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length < 16)
      throw new LinesightError('ERR_CLOUD_CONFIG', 'URL signing key is too short');
    this.#key = key;
  }

  /** Reads the key at `path`, creating it (random, mode 0600) when absent. */
  static async open(path: string): Promise<UrlSigner> {
    return new UrlSigner(await readOrCreateSecretKey(path, KEY_BYTES));
  }

  /** Hex HMAC over every field of the grant. */
  sign(grant: SignedGrant): string {
    const text = [
      grant.method,
      grant.key,
      grant.bytes ?? '',
      grant.sha256 ?? '',
      grant.contentType ?? '',
      grant.expiresAtSec,
    ].join('\n');
    return createHmac('sha256', this.#key).update(text).digest('hex');
  }

  /** True when `signature` is this signer's signature of the grant (constant-time). */
  check(grant: SignedGrant, signature: string): boolean {
    const expected = Buffer.from(this.sign(grant), 'hex');
    const given = Buffer.from(/^[0-9a-f]{64}$/.test(signature) ? signature : '', 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
