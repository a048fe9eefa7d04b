import { DEFECT_KINDS, type DefectKind } from './render/defects.ts';
import { Prng, deriveSeed } from './render/prng.ts';

// Salt of the stream that decides a frame's defect, apart from its pixels' streams.
const DEFECT_DECISION_SALT = 0x64656663;

/** The render seed of frame `seq` of a camera or dataset seeded with `seed`. */
export function frameSeed(seed: number, seq: number): number {
  return deriveSeed(seed, seq);
}

/**
 * The defect drawn in frame `seq` of `seed` (ground truth): with probability
 * `defectRate` one of scratch, spot and crack, equally likely, else `none`.
 */
export function frameDefect(seed: number, seq: number, defectRate: number): DefectKind {
  const prng = new Prng(deriveSeed(frameSeed(seed, seq), DEFECT_DECISION_SALT));
  if (!(prng.uniform() < defectRate)) return 'none';
  return prng.pick(DEFECT_KINDS.slice(1));
}
