import { describe, expect, it } from 'vitest';
import {
  generateSigningKeyPair,
  keyIdOf,
  sha256Hex,
  signManifest,
  verifySignedManifest,
} from './signing.ts';
import { sampleManifest } from '@linesight/testkit/manifests';
import { isLinesightError } from './errors.ts';

const key = generateSigningKeyPair();
const trusted = [{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isLinesightError(err) ? err.code : 'not-a-linesight-error';
  }
  return undefined;
}

describe('manifest signing', () => {
  it('signs and verifies', () => {
    const signed = signManifest(sampleManifest(key.keyId), key);
    expect(verifySignedManifest(signed, trusted).version).toBe('1.0.0');
    expect(keyIdOf(key.publicKeyPem)).toBe(key.keyId);
  });

  it('does not depend on key order in the JSON', () => {
    const signed = signManifest(sampleManifest(key.keyId), key);
    const reordered = JSON.parse(
      JSON.stringify({
        signature: signed.signature,
        manifest: Object.fromEntries(Object.entries(signed.manifest).reverse()),
      }),
    );
    expect(verifySignedManifest(reordered, trusted).name).toBe('tile-defects');
  });

  it('rejects a tampered manifest', () => {
    const signed = signManifest(sampleManifest(key.keyId), key);
    for (const change of [
      { sha256: 'b'.repeat(64) },
      { threshold: 0.99 },
      { version: '1.0.1' },
      { sizeBytes: 1235 },
    ]) {
      expect(
        codeOf(() =>
          verifySignedManifest({ ...signed, manifest: { ...signed.manifest, ...change } }, trusted),
        ),
      ).toBe('ERR_SIGNATURE_INVALID');
    }
    const flipped = Buffer.from(signed.signature, 'base64');
    flipped[0] = (flipped[0] as number) ^ 1;
    expect(
      codeOf(() =>
        verifySignedManifest({ ...signed, signature: flipped.toString('base64') }, trusted),
      ),
    ).toBe('ERR_SIGNATURE_INVALID');
  });

  it('rejects a manifest signed by an untrusted key, even one naming a trusted key id', () => {
    const other = generateSigningKeyPair();
    const byOther = signManifest(sampleManifest(other.keyId), other);
    expect(codeOf(() => verifySignedManifest(byOther, trusted))).toBe('ERR_SIGNATURE_UNKNOWN_KEY');
    const impostor = signManifest(sampleManifest(other.keyId), other);
    const claimed = { ...impostor, manifest: { ...impostor.manifest, keyId: key.keyId } };
    expect(codeOf(() => verifySignedManifest(claimed, trusted))).toBe('ERR_SIGNATURE_INVALID');
  });

  it('rejects an expired manifest', () => {
    const signed = signManifest(
      sampleManifest(key.keyId, { expiresAt: '2026-01-01T00:00:00.000Z' }),
      key,
    );
    expect(
      codeOf(() => verifySignedManifest(signed, trusted, new Date('2026-06-01T00:00:00Z'))),
    ).toBe('ERR_MANIFEST_EXPIRED');
  });

  it('refuses to sign with a key the manifest does not name', () => {
    const other = generateSigningKeyPair();
    expect(codeOf(() => signManifest(sampleManifest(key.keyId), other))).toBe(
      'ERR_SIGNATURE_INVALID',
    );
  });

  it('hashes bytes as lower-case hex', () => {
    expect(sha256Hex(Buffer.from('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
