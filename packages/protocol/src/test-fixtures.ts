import type { Manifest } from './schemas.ts';

/** A valid manifest for tests, signed by `keyId`. */
export function sampleManifest(keyId: string, overrides: Partial<Manifest> = {}): Manifest {
  return {
    schema: 'linesight.manifest/v1',
    name: 'tile-defects',
    version: '1.0.0',
    sha256: 'a'.repeat(64),
    sizeBytes: 1234,
    inputSpec: {
      inputName: 'image',
      width: 128,
      height: 128,
      channels: 1,
      layout: 'NCHW',
      resize: 'fill',
      scale: 1 / 255,
      mean: [0.5],
      std: [0.25],
    },
    outputs: { score: 'score', map: 'map' },
    threshold: 0.5,
    issuedAt: '2026-11-23T10:00:00.000Z',
    keyId,
    ...overrides,
  };
}
