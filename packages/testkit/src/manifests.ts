// Manifests for tests: unsigned, well-formed documents.
import { greyInputSpec, type InputSpec, type Manifest } from '@linesight/protocol';

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

/** A grey NCHW input spec (128x128, fill, scaled to 0-1 and normalised), with `overrides` on top. */
export function testInputSpec(overrides: Partial<InputSpec> = {}): InputSpec {
  return {
    inputName: 'image',
    width: 128,
    height: 128,
    channels: 1,
    layout: 'NCHW',
    resize: 'fill',
    scale: 1 / 255,
    mean: [0.5],
    std: [0.25],
    ...overrides,
  };
}

/** A valid manifest for tests, signed by `keyId`. */
export function sampleManifest(keyId: string, overrides: Partial<Manifest> = {}): Manifest {
  return {
    schema: 'linesight.manifest/v1',
    name: 'tile-defects',
    version: '1.0.0',
    sha256: 'a'.repeat(64),
    sizeBytes: 1234,
    inputSpec: testInputSpec(),
    outputs: { score: 'score', map: 'map' },
    threshold: 0.5,
    issuedAt: '2026-11-23T10:00:00.000Z',
    keyId,
    ...overrides,
  };
}
