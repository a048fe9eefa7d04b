// Test helper shared by the agent's unit tests; not exported from the package.
import { greyInputSpec, type Manifest } from '@linesight/protocol';

/** A well-formed manifest of an 8x8 grey model; unsigned, for code that gets it already verified. */
export function testManifest(version: string, sha256: string): Manifest {
  return {
    schema: 'linesight.manifest/v1',
    name: 'm',
    version,
    sha256,
    sizeBytes: 1,
    inputSpec: greyInputSpec(8),
    outputs: { score: 'score' },
    threshold: 0.5,
    issuedAt: '2026-11-23T10:00:00.000Z',
    keyId: '0123456789abcdef',
  };
}
