import { describe, expect, it } from 'vitest';
import type { SignedManifest } from '@linesight/protocol';
import { artifactPath, assignmentOf } from './model-assignment.ts';

describe('model assignment', () => {
  it('points at the artifact route, with name and version each encoded as one path segment', () => {
    expect(artifactPath('tile', '1.0.0')).toBe('/v1/models/tile/1.0.0/artifact');
    expect(artifactPath('tile line', '1.0.0+build/7')).toBe(
      '/v1/models/tile%20line/1.0.0%2Bbuild%2F7/artifact',
    );
  });

  it('assigns the signed manifest as stored, with the URL of its artifact', () => {
    const signed = { manifest: { name: 'tile', version: '2.0.0' } } as unknown as SignedManifest;
    const assignment = assignmentOf({ name: 'tile', version: '2.0.0', signed });
    expect(assignment).toEqual({ signed, artifactUrl: '/v1/models/tile/2.0.0/artifact' });
    expect(assignment.signed).toBe(signed);
  });
});
