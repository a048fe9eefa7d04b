import { describe, expect, it } from 'vitest';
import { verifySignedManifest } from '@linesight/protocol';
import { testSigner } from './test-signer.ts';

describe('testSigner', () => {
  it('signs manifests of given bytes that verify against its trusted key only', () => {
    const signer = testSigner();
    const bytes = new TextEncoder().encode('model 1.0.0');
    const manifest = signer.manifestOf('1.0.0', bytes);
    expect(manifest).toMatchObject({ version: '1.0.0', sizeBytes: 11, keyId: signer.keyId });
    const signed = signer.sign(manifest);
    expect(verifySignedManifest(signed, [signer.trusted])).toEqual(manifest);
    expect(() => verifySignedManifest(signed, [testSigner().trusted])).toThrow();
  });
});
