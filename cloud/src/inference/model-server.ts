import type { Logger } from 'pino';
import { LinesightError, sha256Hex } from '@linesight/protocol';
import { InferenceWorkerPool, preprocessImage } from '@linesight/vision';
import type { BlobStore } from '../blobs/blob-store.ts';
import type { ModelRegistry, ModelVersion } from '../registry/model-registry.ts';
import { checkImageHeader } from './image-format.ts';
import { ModelPool } from './model-pool.ts';

/** How the model server hosts models; every field has a default. */
export interface ModelServerOptions {
  /** Worker threads (ONNX sessions) per loaded version; default 2. */
  workersPerModel?: number;
  /** Versions kept loaded at once; the least recently used is closed beyond this. Default 4. */
  maxLoadedVersions?: number;
  /** An inference slower than this fails the request; default 30 s. */
  watchdogMs?: number;
  /** Largest decoded image accepted, in pixels; default 64 MP. */
  maxInputPixels?: number;
  /**
   * Predictions decoded and scored at once, over all models; later ones wait
   * in arrival order. Bounds the memory of decoded images under a burst.
   * Default: two per worker, so each worker has one image in inference and
   * the next one being decoded.
   */
  maxActivePredictions?: number;
}

/** One central prediction. */
export interface Prediction {
  score: number;
  /** True when the score is at or above the model's threshold. */
  defect: boolean;
  threshold: number;
  model: { name: string; version: string };
  /** Server time from model selection to score, including a first load. */
  latencyMs: number;
  preprocessMs: number;
  /** Time from handing the tensor to a worker to its answer (queueing included). */
  inferenceMs: number;
}

/** Counters of the model server, for metrics and tests. */
export interface ModelServerStats {
  predictions: number;
  loads: number;
  evictions: number;
  loaded: number;
}

interface Entry {
  key: string;
  pool: Promise<ModelPool>;
  /** Requests using this version now. */
  active: number;
  evicted: boolean;
  /** Settles once the pool is closed, which happens after the last active request. */
  closed: Promise<void>;
  settleClosed: (closing: Promise<void>) => void;
}

const SELECTOR = /^([a-z0-9][a-z0-9_.-]{0,63})(?:@([0-9A-Za-z.+-]{1,64}))?$/;
const PRODUCTION = 'production';

/**
 * Serves registered models for central inference. Versions are loaded lazily
 * from the blob store into pools of worker-thread sessions (inference never
 * runs on the event loop), kept in a bounded LRU cache; an evicted version is
 * closed once its in-flight requests finish. start() is not needed; close()
 * releases every session and the spare worker thread.
 */
export class ModelServer {
  readonly #models: ModelRegistry;
  readonly #blobs: BlobStore;
  readonly #log: Logger;
  readonly #workers: number;
  /** The sessions' worker threads, with a warm spare for the next load; closed after them. */
  readonly #threads = new InferenceWorkerPool();
  readonly #maxLoaded: number;
  readonly #watchdogMs: number;
  readonly #maxPixels: number;
  readonly #maxActive: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  /** Insertion order is recency: the first entry is the least recently used. */
  readonly #cache = new Map<string, Entry>();
  /** Evicted versions whose pools are not closed yet. */
  readonly #retired = new Set<Entry>();
  #closing: Promise<void> | undefined;
  readonly #stats = { predictions: 0, loads: 0, evictions: 0 };

  constructor(deps: {
    models: ModelRegistry;
    blobs: BlobStore;
    logger: Logger;
    options?: ModelServerOptions;
  }) {
    const o = deps.options ?? {};
    this.#models = deps.models;
    this.#blobs = deps.blobs;
    this.#log = deps.logger;
    this.#workers = Math.max(1, o.workersPerModel ?? 2);
    this.#maxLoaded = Math.max(1, o.maxLoadedVersions ?? 4);
    this.#watchdogMs = o.watchdogMs ?? 30_000;
    this.#maxPixels = o.maxInputPixels ?? 64 * 1024 * 1024;
    this.#maxActive = Math.max(1, o.maxActivePredictions ?? this.#workers * 2);
  }

  /** Counters since start. */
  get stats(): ModelServerStats {
    return { ...this.#stats, loaded: this.#cache.size };
  }

  /**
   * Picks the version a selector names: `name@version` exactly; `name` its
   * newest `production` version, else (no stage workflow yet) its newest
   * version; nothing, the only registered name. ERR_CLOUD_NOT_FOUND when
   * nothing matches, ERR_CLOUD_BAD_REQUEST for a malformed or ambiguous selector.
   */
  resolve(selector: string | undefined): ModelVersion {
    if (selector === undefined || selector === '') {
      const names = [...new Set(this.#models.list().map((m) => m.name))];
      if (names.length === 0) {
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          'no model is registered: publish one first (linesight model publish)',
        );
      }
      if (names.length > 1) {
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          `${names.length} models are registered (${names.sort().join(', ')}): choose one with ?model=name or ?model=name@version`,
        );
      }
      return this.resolve(names[0]);
    }
    const match = SELECTOR.exec(selector);
    if (match === null) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid model selector ${JSON.stringify(selector)}: use name or name@version`,
      );
    }
    const name = match[1] as string;
    const version = match[2];
    if (version !== undefined) return this.#models.get(name, version);
    const versions = this.#models
      .list()
      .filter((m) => m.name === name)
      .sort(newestFirst);
    const chosen = versions.find((m) => m.stage === PRODUCTION) ?? versions[0];
    if (chosen === undefined)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `model ${name} is not registered`);
    return chosen;
  }

  /**
   * Scores one encoded JPEG or PNG with the selected model. Throws
   * ERR_CLOUD_NOT_FOUND (no such model), ERR_IMAGE_DECODE (not a decodable
   * JPEG/PNG) or ERR_CLOUD_PAYLOAD_TOO_LARGE (too many pixels).
   */
  async predict(image: Uint8Array, selector?: string): Promise<Prediction> {
    const started = performance.now();
    if (this.#closing !== undefined)
      throw new LinesightError('ERR_CLOUD_CONFIG', 'the model server is closed');
    const model = this.resolve(selector);
    checkImageHeader(image, this.#maxPixels);
    const entry = this.#acquire(model);
    try {
      const pool = await entry.pool;
      await this.#turn();
      try {
        return await this.#score(pool, image, model, started);
      } finally {
        this.#endTurn();
      }
    } finally {
      this.#release(entry);
    }
  }

  async #score(
    pool: ModelPool,
    image: Uint8Array,
    model: ModelVersion,
    started: number,
  ): Promise<Prediction> {
    const t1 = performance.now();
    const input = await preprocessImage(image, pool.contract.inputSpec);
    const t2 = performance.now();
    const { score } = await pool.run(input);
    const t3 = performance.now();
    this.#stats.predictions++;
    const threshold = pool.contract.threshold;
    return {
      score,
      defect: score >= threshold,
      threshold,
      model: { name: model.name, version: model.version },
      latencyMs: t3 - started,
      preprocessMs: t2 - t1,
      inferenceMs: t3 - t2,
    };
  }

  // FIFO admission (see maxActivePredictions).
  #turn(): Promise<void> {
    if (this.#active < this.#maxActive) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #endTurn(): void {
    const next = this.#waiting.shift();
    if (next !== undefined)
      next(); // the turn passes on; #active stays
    else this.#active--;
  }

  /** Closes every loaded version after its in-flight requests; idempotent, collects errors. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const entry of this.#cache.values()) this.#evict(entry);
      this.#cache.clear();
      // No entry is created after this point, so these are all there will be.
      const results = await Promise.allSettled([...this.#retired].map((e) => e.closed));
      // After the sessions, whose threads are theirs to close: the pool stops its spare.
      results.push(...(await Promise.allSettled([this.#threads.close()])));
      const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      if (errors.length > 0) throw new AggregateError(errors, 'model server close failed');
    })();
    return this.#closing;
  }

  #acquire(model: ModelVersion): Entry {
    const key = `${model.name}@${model.version}#${model.sha256}`;
    let entry = this.#cache.get(key);
    if (entry !== undefined) {
      this.#cache.delete(key); // re-insert as most recently used
    } else {
      let settleClosed: (closing: Promise<void>) => void = () => undefined;
      const closed = new Promise<void>((resolve) => {
        settleClosed = resolve;
      });
      closed.catch(() => undefined);
      entry = { key, pool: this.#load(model), active: 0, evicted: false, closed, settleClosed };
      const created = entry;
      // A failed load leaves the cache, so the next request tries again.
      created.pool.catch(() => {
        if (this.#cache.get(key) === created) this.#cache.delete(key);
      });
    }
    this.#cache.set(key, entry);
    entry.active++;
    for (const [oldKey, old] of this.#cache) {
      if (this.#cache.size <= this.#maxLoaded) break;
      if (oldKey === key) continue;
      this.#cache.delete(oldKey);
      this.#stats.evictions++;
      this.#log.info({ model: oldKey.split('#')[0] }, 'unloading least recently used model');
      this.#evict(old);
    }
    return entry;
  }

  #release(entry: Entry): void {
    entry.active--;
    if (entry.evicted && entry.active === 0) this.#closePool(entry);
  }

  #evict(entry: Entry): void {
    if (entry.evicted) return;
    entry.evicted = true;
    this.#retired.add(entry);
    if (entry.active === 0) this.#closePool(entry);
  }

  #closePool(entry: Entry): void {
    const closing = entry.pool
      .then(
        (pool) => pool.close(),
        () => undefined, // never loaded: nothing to close
      )
      .catch((err: unknown) => {
        this.#log.error({ err, model: entry.key }, 'closing a model failed');
        throw err;
      })
      .finally(() => this.#retired.delete(entry));
    entry.settleClosed(closing);
  }

  /**
   * Loads a registered version. Any failure here is the server's (the version
   * was checked when it was registered), so it is reported as
   * ERR_CLOUD_MODEL_UNAVAILABLE, a 500, whatever the underlying error.
   */
  async #load(model: ModelVersion): Promise<ModelPool> {
    const started = performance.now();
    let pool: ModelPool;
    try {
      pool = await ModelPool.load(await this.#readArtifact(model), {
        workers: this.#workers,
        watchdogMs: this.#watchdogMs,
        threads: this.#threads,
      });
    } catch (cause) {
      this.#log.error({ err: cause, model: `${model.name}@${model.version}` }, 'model load failed');
      throw new LinesightError(
        'ERR_CLOUD_MODEL_UNAVAILABLE',
        `${model.name}@${model.version} is registered but cannot be loaded for inference; the cloud log has the cause`,
        { cause },
      );
    }
    this.#stats.loads++;
    this.#log.info(
      {
        model: `${model.name}@${model.version}`,
        workers: this.#workers,
        loadMs: Math.round(performance.now() - started),
      },
      'model loaded for central inference',
    );
    return pool;
  }

  async #readArtifact(model: ModelVersion): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of await this.#blobs.read(model.blobKey)) chunks.push(chunk as Buffer);
    } catch (cause) {
      const code = (cause as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ERR_CLOUD_NOT_FOUND') {
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          `artifact of ${model.name}@${model.version} is missing from the blob store`,
          { cause },
        );
      }
      throw cause;
    }
    const onnx = Buffer.concat(chunks);
    if (sha256Hex(onnx) !== model.sha256) {
      throw new LinesightError(
        'ERR_MODEL_LOAD',
        `artifact of ${model.name}@${model.version} does not match its registered sha256`,
      );
    }
    return onnx;
  }
}

// Registration time first; the higher version breaks a tie within one millisecond.
function newestFirst(a: ModelVersion, b: ModelVersion): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return compareVersions(b.version, a.version);
}

function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core = '', pre] = v.split('+', 1)[0]?.split(/-(.*)/s) ?? [];
    return { nums: core.split('.').map(Number), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  // A pre-release sorts before its release.
  if (x.pre === undefined || y.pre === undefined)
    return (x.pre === undefined ? 1 : 0) - (y.pre === undefined ? 1 : 0);
  return x.pre < y.pre ? -1 : x.pre > y.pre ? 1 : 0;
}
