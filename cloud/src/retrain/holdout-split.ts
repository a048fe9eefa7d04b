/** A labelled sample as the split sees it. */
export interface SplitCandidate {
  labelId: number;
  label: 'good' | 'defect';
  capturedAt: string;
}

/** Labelled samples the challenger trains on, and those both models are compared on. */
export interface HoldoutSplit<T> {
  train: T[];
  holdout: T[];
}

/**
 * Keeps the newest `share` of each label out of training (at least
 * `minPerLabel` of each when there are twice that many, so training keeps
 * some too): the held-out set is what the line looks like now, and the
 * challenger never saw it. Ties in capture time go by label id, so a split
 * is the same for the same samples.
 */
export function holdoutSplit<T extends SplitCandidate>(
  samples: readonly T[],
  options: { share: number; minPerLabel: number },
): HoldoutSplit<T> {
  const split: HoldoutSplit<T> = { train: [], holdout: [] };
  for (const label of ['good', 'defect'] as const) {
    const group = samples
      .filter((s) => s.label === label)
      .sort((a, b) => Date.parse(b.capturedAt) - Date.parse(a.capturedAt) || b.labelId - a.labelId);
    let take = Math.round(group.length * options.share);
    if (group.length >= 2 * options.minPerLabel) take = Math.max(take, options.minPerLabel);
    else take = Math.min(group.length, Math.max(take, options.minPerLabel));
    split.holdout.push(...group.slice(0, take));
    split.train.push(...group.slice(take));
  }
  const byId = (a: T, b: T) => a.labelId - b.labelId;
  split.train.sort(byId);
  split.holdout.sort(byId);
  return split;
}
