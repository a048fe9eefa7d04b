import { LinesightError, isSemver } from '@linesight/protocol';

/** Numeric core of a semantic version ([major, minor, patch]) and whether it is a pre-release. */
function parts(version: string): { core: [number, number, number]; pre: boolean } {
  const match = /^(\d+)\.(\d+)\.(\d+)(-[^+]*)?/.exec(version);
  if (match === null || !isSemver(version))
    throw new LinesightError('ERR_CLOUD_BAD_REQUEST', `not a semantic version: ${version}`);
  return {
    core: [Number(match[1]), Number(match[2]), Number(match[3])],
    pre: match[4] !== undefined,
  };
}

/**
 * The version a retrained challenger gets: the next minor version above every
 * version of the model registered so far (1.0.0 and 1.2.3 give 1.3.0), so
 * that it sorts after its parent and never collides with a published one.
 */
export function nextVersion(existing: readonly string[]): string {
  let best: [number, number, number] = [0, 0, 0];
  for (const v of existing) {
    const { core } = parts(v);
    for (let i = 0; i < 3; i++) {
      const d = (core[i] as number) - (best[i] as number);
      if (d > 0) {
        best = core;
        break;
      }
      if (d < 0) break;
    }
  }
  return `${best[0]}.${best[1] + 1}.0`;
}
