import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import { assertSchema } from './codec.ts';
import { LinesightError } from './errors.ts';
import { ManifestSchema, type Manifest, type SignedManifest } from './schemas.ts';

/** An Ed25519 signing key pair in PEM, with its key id. */
export interface SigningKeyPair {
  keyId: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** A public key a device trusts, by key id. */
export interface TrustedKey {
  keyId: string;
  publicKeyPem: string;
}

/** Makes a new Ed25519 key pair. */
export function generateSigningKeyPair(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    keyId: keyIdOf(publicKey),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The key id of a public key: the first 16 hex digits of the SHA-256 of its DER form. */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

// Parsing a PEM private key costs more than the Ed25519 signature itself; a
// cloud signing desired state for a thousand devices parses its key once.
const privateKeys = new Map<string, KeyObject>();

function privateKeyOf(pem: string): KeyObject {
  let key = privateKeys.get(pem);
  if (key === undefined) {
    key = createPrivateKey(pem);
    if (privateKeys.size >= 16) privateKeys.clear();
    privateKeys.set(pem, key);
  }
  return key;
}

/** Ed25519 signature (base64) over a value's canonical JSON, refusing a key the value does not name. */
function signCanonical(
  value: unknown,
  namedKeyId: string,
  keyPair: Pick<SigningKeyPair, 'privateKeyPem' | 'keyId'>,
  what: string,
): string {
  if (namedKeyId !== keyPair.keyId) {
    throw new LinesightError(
      'ERR_SIGNATURE_INVALID',
      `${what} names key ${namedKeyId} but is signed with ${keyPair.keyId}`,
    );
  }
  return sign(
    null,
    Buffer.from(canonicalJson(value)),
    privateKeyOf(keyPair.privateKeyPem),
  ).toString('base64');
}

/** Checks a signature over a value's canonical JSON with the trusted key it names. */
function verifyCanonical(
  value: unknown,
  keyId: string,
  signature: string,
  trusted: readonly TrustedKey[],
  what: string,
): void {
  const key = trusted.find((k) => k.keyId === keyId);
  if (key === undefined)
    throw new LinesightError(
      'ERR_SIGNATURE_UNKNOWN_KEY',
      `${what} is signed by untrusted key ${keyId}`,
    );
  let ok: boolean;
  try {
    ok = verify(
      null,
      Buffer.from(canonicalJson(value)),
      createPublicKey(key.publicKeyPem),
      Buffer.from(signature, 'base64'),
    );
  } catch (cause) {
    throw new LinesightError('ERR_SIGNATURE_INVALID', `signature of ${what} cannot be checked`, {
      cause,
    });
  }
  if (!ok)
    throw new LinesightError('ERR_SIGNATURE_INVALID', `signature of ${what} does not verify`);
}

/** Signs a manifest with an Ed25519 private key; the manifest's keyId must name that key. */
export function signManifest(
  manifest: Manifest,
  keyPair: Pick<SigningKeyPair, 'privateKeyPem' | 'keyId'>,
): SignedManifest {
  assertSchema(ManifestSchema, manifest, 'manifest');
  return { manifest, signature: signCanonical(manifest, manifest.keyId, keyPair, 'manifest') };
}

/**
 * Verifies a signed manifest against trusted keys and its expiry. Returns the
 * manifest; throws ERR_SIGNATURE_UNKNOWN_KEY, ERR_SIGNATURE_INVALID or
 * ERR_MANIFEST_EXPIRED.
 */
export function verifySignedManifest(
  signed: SignedManifest,
  trusted: readonly TrustedKey[],
  now: Date = new Date(),
): Manifest {
  const manifest = assertSchema(ManifestSchema, signed.manifest, 'manifest');
  const label = `manifest ${manifest.name}@${manifest.version}`;
  verifyCanonical(manifest, manifest.keyId, signed.signature, trusted, label);
  if (manifest.expiresAt !== undefined && Date.parse(manifest.expiresAt) <= now.getTime()) {
    throw new LinesightError('ERR_MANIFEST_EXPIRED', `${label} expired at ${manifest.expiresAt}`);
  }
  return manifest;
}

/** SHA-256 of bytes, lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A document that carries its own signer's key id and signature. */
export interface SelfSignedDocument {
  keyId: string;
  signature: string;
}

/**
 * Signs a document in place of its `signature` field: Ed25519 over the
 * canonical JSON of everything else (including `keyId`, which must name the key).
 */
export function signDocument<T extends SelfSignedDocument>(
  unsigned: Omit<T, 'signature'>,
  keyPair: Pick<SigningKeyPair, 'privateKeyPem' | 'keyId'>,
): T {
  return {
    ...unsigned,
    signature: signCanonical(unsigned, unsigned.keyId, keyPair, 'document'),
  } as T;
}

/** Verifies a self-signed document against trusted keys; throws ERR_SIGNATURE_UNKNOWN_KEY or ERR_SIGNATURE_INVALID. */
export function verifyDocument(
  doc: SelfSignedDocument,
  trusted: readonly TrustedKey[],
  what: string,
): void {
  const { signature, ...unsigned } = doc;
  verifyCanonical(unsigned, doc.keyId, signature, trusted, what);
}
