import sharp from 'sharp';
import type { Logger } from 'pino';
import type { AnomalyMap } from '@linesight/vision';
import {
  describeError,
  type FrameResult,
  type SampleClass,
  type SamplingPolicy,
} from '@linesight/protocol';
import type { Frame } from '../camera/camera.ts';
import type { EdgeStore } from '../store/edge-store.ts';
import { anomalyHeatmapPng } from './heatmap.ts';
import {
  classifyForSampling,
  resolveSamplingPolicy,
  type ResolvedSamplingPolicy,
} from './sampling-policy.ts';

/** Options of the sampler. */
export interface SamplerOptions {
  store: EdgeStore;
  logger: Logger;
  policy?: SamplingPolicy;
  /** Frames waiting to be encoded beyond this are dropped and counted (default 8). */
  maxPending?: number;
  random?: () => number;
  now?: () => number;
}

/** What the sampler did, cumulative. */
export interface SamplerStats {
  sampled: Record<SampleClass, number>;
  /** Frames that qualified but their class had reached its hourly cap. */
  capped: number;
  /** Frames that qualified but the encoding queue was full. */
  dropped: number;
  /** Frames whose image could not be encoded or stored. */
  failed: number;
}

/**
 * Decides which scored frames to keep (every defect and unknown, frames in
 * the uncertainty band, a random share; each class capped per clock hour)
 * and stores them: a JPEG at the policy's quality and maximum side, plus the
 * anomaly map as a small PNG heatmap. Encoding runs off the frame path
 * (sharp, libuv pool) with a bounded queue: when full, new samples are
 * dropped and counted.
 */
export class Sampler {
  readonly #o: SamplerOptions;
  #policy: ResolvedSamplingPolicy;
  #hour = -1;
  #hourCounts: Record<SampleClass, number> = { defect: 0, uncertain: 0, random: 0, unknown: 0 };
  #pending = 0;
  #idle: (() => void)[] = [];
  readonly stats: SamplerStats = {
    sampled: { defect: 0, uncertain: 0, random: 0, unknown: 0 },
    capped: 0,
    dropped: 0,
    failed: 0,
  };

  constructor(options: SamplerOptions) {
    this.#o = options;
    this.#policy = resolveSamplingPolicy(options.policy);
  }

  /** The policy in force, every field set. */
  get policy(): ResolvedSamplingPolicy {
    return this.#policy;
  }

  /** Replaces the policy (fields left out take the defaults). */
  setPolicy(policy: SamplingPolicy | undefined): void {
    this.#policy = resolveSamplingPolicy(policy);
  }

  /** Offers a scored frame; returns at once. */
  offer(frame: Frame, result: FrameResult, map?: AnomalyMap): void {
    const cls = classifyForSampling(this.#policy, result, (this.#o.random ?? Math.random)());
    if (cls === undefined) return;
    const hour = Math.floor((this.#o.now ?? Date.now)() / 3_600_000);
    if (hour !== this.#hour) {
      this.#hour = hour;
      this.#hourCounts = { defect: 0, uncertain: 0, random: 0, unknown: 0 };
    }
    if (this.#hourCounts[cls] >= this.#policy.capsPerHour[cls]) {
      this.stats.capped++;
      return;
    }
    if (this.#pending >= (this.#o.maxPending ?? 8)) {
      this.stats.dropped++;
      return;
    }
    this.#hourCounts[cls]++;
    this.#pending++;
    void this.#store(frame, result, cls, map).finally(() => {
      this.#pending--;
      if (this.#pending === 0) for (const w of this.#idle.splice(0)) w();
    });
  }

  /** Resolves when no sample is being encoded or written. */
  drain(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #store(
    frame: Frame,
    result: FrameResult,
    cls: SampleClass,
    map?: AnomalyMap,
  ): Promise<void> {
    const policy = this.#policy;
    try {
      const image = await sharp(frame.image)
        .rotate()
        .resize({
          width: policy.maxSide,
          height: policy.maxSide,
          fit: 'inside',
          withoutEnlargement: true,
        })
        .jpeg({ quality: policy.jpegQuality })
        .toBuffer();
      const heatmap =
        policy.anomalyMap && map !== undefined
          ? await anomalyHeatmapPng(map, result.threshold)
          : undefined;
      const stored = await this.#o.store.addSample(
        {
          frameSeq: result.seq,
          at: result.capturedAt,
          class: cls,
          modelName: result.model?.name ?? null,
          modelVersion: result.model?.version ?? null,
          score: result.score,
          verdict: result.verdict,
          ...(result.reason !== undefined ? { reason: result.reason.slice(0, 500) } : {}),
        },
        image,
        heatmap,
      );
      if (stored) this.stats.sampled[cls]++;
      else this.stats.failed++;
    } catch (err) {
      this.stats.failed++;
      this.#o.logger.warn(
        { seq: frame.seq, err: describeError(err) },
        'frame could not be sampled',
      );
    }
  }
}
