import type { PyramidModelParams } from './pyramid-graph.ts';

/** A fitted scorer of cell features: its graph parameters and its contract summary. */
export interface FittedScorer<P extends PyramidModelParams = PyramidModelParams> {
  params: P;
  summary: Record<string, unknown>;
}
