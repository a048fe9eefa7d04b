import type { LabelCountRow } from './review-store.ts';

/** Confusion counts with the precision and recall they give (null when undefined: 0/0). */
export interface QualityCounts {
  /** Labelled samples, scored or not. */
  labelled: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  unscored: number;
  /** tp / (tp + fp): of the frames the model called defect, the share that were. */
  precision: number | null;
  /** tp / (tp + fn): of the labelled defects, the share the model caught. */
  recall: number | null;
}

/** One day of counts. */
export interface QualityDay extends QualityCounts {
  /** Start of the UTC day of capture. */
  day: string;
}

/** A model version's quality on one device: over the range and per day. */
export interface DeviceQuality {
  deviceId: string;
  total: QualityCounts;
  daily: QualityDay[];
}

/** A model version's quality over all devices, and per device. */
export interface VersionQuality {
  modelName: string | null;
  modelVersion: string | null;
  total: QualityCounts;
  daily: QualityDay[];
  devices: DeviceQuality[];
}

type Raw = Pick<QualityCounts, 'tp' | 'fp' | 'fn' | 'tn' | 'unscored'>;

function empty(): Raw {
  return { tp: 0, fp: 0, fn: 0, tn: 0, unscored: 0 };
}

function addInto(into: Raw, r: Raw): void {
  into.tp += r.tp;
  into.fp += r.fp;
  into.fn += r.fn;
  into.tn += r.tn;
  into.unscored += r.unscored;
}

/** Precision and recall of raw counts; a rate with an empty denominator is null, never 0. */
export function withRates(r: Raw): QualityCounts {
  return {
    labelled: r.tp + r.fp + r.fn + r.tn + r.unscored,
    tp: r.tp,
    fp: r.fp,
    fn: r.fn,
    tn: r.tn,
    unscored: r.unscored,
    precision: r.tp + r.fp === 0 ? null : r.tp / (r.tp + r.fp),
    recall: r.tp + r.fn === 0 ? null : r.tp / (r.tp + r.fn),
  };
}

function group<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

/**
 * Folds per-device daily counts into each model version's quality: overall
 * and per device, over the whole range and per day (days ascending).
 */
export function summarizeQuality(rows: readonly LabelCountRow[]): VersionQuality[] {
  interface Acc {
    modelName: string | null;
    modelVersion: string | null;
    total: Raw;
    daily: Map<number, Raw>;
    devices: Map<string, { total: Raw; daily: Map<number, Raw> }>;
  }
  const versions = new Map<string, Acc>();
  for (const row of rows) {
    const v = group(versions, `${row.modelName ?? ''}\u0000${row.modelVersion ?? ''}`, () => ({
      modelName: row.modelName,
      modelVersion: row.modelVersion,
      total: empty(),
      daily: new Map<number, Raw>(),
      devices: new Map<string, { total: Raw; daily: Map<number, Raw> }>(),
    }));
    addInto(v.total, row);
    addInto(group(v.daily, row.dayMs, empty), row);
    const d = group(v.devices, row.deviceId, () => ({
      total: empty(),
      daily: new Map<number, Raw>(),
    }));
    addInto(d.total, row);
    addInto(group(d.daily, row.dayMs, empty), row);
  }
  const days = (m: Map<number, Raw>): QualityDay[] =>
    [...m.entries()]
      .sort(([a], [b]) => a - b)
      .map(([dayMs, raw]) => ({ day: new Date(dayMs).toISOString(), ...withRates(raw) }));
  return [...versions.values()].map((v) => ({
    modelName: v.modelName,
    modelVersion: v.modelVersion,
    total: withRates(v.total),
    daily: days(v.daily),
    devices: [...v.devices.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([deviceId, d]) => ({ deviceId, total: withRates(d.total), daily: days(d.daily) })),
  }));
}
