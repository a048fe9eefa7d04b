// A throwaway Ed25519 signing key for tests: signs manifests as the cloud's key ring does
// and gives the trusted-key list a device is provisioned with.
import {
  generateSigningKeyPair,
  sha256Hex,
  signManifest,
  type DesiredState,
  type Manifest,
  type ModelAssignment,
  type SignedManifest,
  type SigningKeyPair,
  type TrustedKey,
} from '@linesight/protocol';
import { testManifest } from './manifests.ts';

/** A fresh key pair and what tests do with it. */
export interface TestSigner extends SigningKeyPair {
  /** The key as a device trusts it. */
  readonly trusted: TrustedKey;
  /** A well-formed manifest of these artifact bytes (8x8 grey model), signed by this key's id. */
  manifestOf(version: string, bytes: Uint8Array): Manifest;
  /** Signs `manifest` with this key. */
  sign(manifest: Manifest): SignedManifest;
  /**
   * A desired state for device `d1` naming `model`, at `revision`, valid for an hour,
   * under this key's id. Its signature is a placeholder: the model updater does not
   * check it (the desired-state guard before it does).
   */
  desired(model: ModelAssignment, revision: number): DesiredState;
}

/** Makes a test signer with a new Ed25519 key. */
export function testSigner(): TestSigner {
  const key = generateSigningKeyPair();
  return {
    ...key,
    trusted: { keyId: key.keyId, publicKeyPem: key.publicKeyPem },
    manifestOf: (version, bytes) => ({
      ...testManifest(version, sha256Hex(bytes)),
      sizeBytes: bytes.byteLength,
      keyId: key.keyId,
    }),
    sign: (manifest) => signManifest(manifest, key),
    desired: (model, revision) => ({
      schema: 'linesight.desired/v1',
      deviceId: 'd1',
      revision,
      issuedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      keyId: key.keyId,
      signature: 'unchecked-here',
      model,
    }),
  };
}
