// Test helper shared by the agent's unit tests; not exported from the package.
import type { Manifest } from '@linesight/protocol';

/** A well-formed manifest of an 8x8 grey model; unsigned, for code that gets it already verified. */
export function testManifest(version: string, sha256: string): Manifest {
  return {
    schema: 'linesight.manifest/v1',
    name: 'm',
    version,
    sha256,
    sizeBytes: 1,
    inputSpec: {
      inputName: 'image',
      width: 8,
      height: 8,
      channels: 1,
      layout: 'NCHW',
      resize: 'fill',
      scale: 1 / 255,
      mean: [0],
      std: [1],
    },
    outputs: { score: 'score' },
    threshold: 0.5,
    issuedAt: '2026-11-23T10:00:00.000Z',
    keyId: '0123456789abcdef',
  };
}
