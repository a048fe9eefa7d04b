import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@linesight/durable-fs';
import {
  LinesightError,
  generateSigningKeyPair,
  keyIdOf,
  signDocument,
  type SigningKeyPair,
  type TrustList,
  type TrustedKey,
} from '@linesight/protocol';

interface StoredKey extends SigningKeyPair {
  createdAt: string;
  retiredAt?: string;
}

interface RingFile {
  activeKeyId: string;
  trustVersion: number;
  keys: StoredKey[];
}

/**
 * The cloud's Ed25519 signing keys: one active key signs new manifests and
 * desired state; every key not retired is trusted by devices. Rotation adds a
 * key and makes it active; devices learn it from a trust list signed by a key
 * they already trust. Kept in `<dataDir>/keys/ring.json` (mode 0600).
 */
export class KeyRing {
  readonly #path: string;
  #ring: RingFile;

  private constructor(path: string, ring: RingFile) {
    this.#path = path;
    this.#ring = ring;
  }

  /** Loads the ring, creating it with one key on first start. */
  static async open(dataDir: string): Promise<KeyRing> {
    const dir = join(dataDir, 'keys');
    const path = join(dir, 'ring.json');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode applies only to a new folder: repair an existing one (and the file below).
    await chmod(dir, 0o700);
    try {
      const ring = JSON.parse(await readFile(path, 'utf8')) as RingFile;
      await chmod(path, 0o600);
      for (const k of ring.keys) k.keyId = keyIdOf(k.publicKeyPem);
      return new KeyRing(path, ring);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const key = { ...generateSigningKeyPair(), createdAt: new Date().toISOString() };
    const ring = new KeyRing(path, { activeKeyId: key.keyId, trustVersion: 1, keys: [key] });
    await ring.#save();
    return ring;
  }

  /** The key that signs new documents. */
  get active(): SigningKeyPair {
    const key = this.#ring.keys.find((k) => k.keyId === this.#ring.activeKeyId);
    if (key === undefined)
      throw new LinesightError('ERR_CLOUD_CONFIG', 'the key ring has no active key');
    return key;
  }

  /** Public keys devices should trust: every key not retired, oldest first. */
  get trusted(): TrustedKey[] {
    return this.#live().map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem }));
  }

  /** Every key with its state, for the API (no private parts). */
  describe(): { keyId: string; createdAt: string; retiredAt?: string; active: boolean }[] {
    return this.#ring.keys.map((k) => ({
      keyId: k.keyId,
      createdAt: k.createdAt,
      ...(k.retiredAt ? { retiredAt: k.retiredAt } : {}),
      active: k.keyId === this.#ring.activeKeyId,
    }));
  }

  /**
   * The current trust list, signed by the oldest trusted key: a device that
   * trusted the previous list can verify it and learn the new keys.
   */
  trustList(): TrustList {
    const signer = this.#live()[0] as StoredKey;
    return signDocument<TrustList>(
      {
        schema: 'linesight.trust/v1',
        version: this.#ring.trustVersion,
        keys: this.trusted,
        issuedAt: new Date().toISOString(),
        keyId: signer.keyId,
      },
      signer,
    );
  }

  /** Adds a new key and makes it the active signer; the old one stays trusted until retired. */
  async rotate(): Promise<SigningKeyPair> {
    if (this.#live().length >= 8)
      throw new LinesightError(
        'ERR_CLOUD_CONFLICT',
        'too many trusted keys: retire an old one first',
      );
    const key = { ...generateSigningKeyPair(), createdAt: new Date().toISOString() };
    this.#ring = {
      activeKeyId: key.keyId,
      trustVersion: this.#ring.trustVersion + 1,
      keys: [...this.#ring.keys, key],
    };
    await this.#save();
    return key;
  }

  /** Stops trusting a key; the active key cannot be retired. */
  async retire(keyId: string): Promise<void> {
    const key = this.#ring.keys.find((k) => k.keyId === keyId);
    if (key === undefined) throw new LinesightError('ERR_CLOUD_NOT_FOUND', `no key ${keyId}`);
    if (keyId === this.#ring.activeKeyId)
      throw new LinesightError(
        'ERR_CLOUD_CONFLICT',
        `key ${keyId} is the active signer; rotate first`,
      );
    if (key.retiredAt !== undefined) return;
    key.retiredAt = new Date().toISOString();
    this.#ring = { ...this.#ring, trustVersion: this.#ring.trustVersion + 1 };
    await this.#save();
  }

  #live(): StoredKey[] {
    return this.#ring.keys.filter((k) => k.retiredAt === undefined);
  }

  /** Writes the ring so that a crash leaves the old or the new one (mode 0600: it holds private keys). */
  async #save(): Promise<void> {
    await writeFileAtomic(this.#path, JSON.stringify(this.#ring, null, 2), { mode: 0o600 });
  }
}
