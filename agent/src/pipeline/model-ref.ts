import type { Manifest, ModelRef } from '@linesight/protocol';

/** The model ref of a manifest. */
export function modelRefOf(m: Manifest): ModelRef {
  return { name: m.name, version: m.version, sha256: m.sha256 };
}
