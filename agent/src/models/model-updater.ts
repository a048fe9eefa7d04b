import type { Logger } from 'pino';
import {
  WorkerOnnxModel,
  goldenInputs,
  withinGoldenTolerance,
  type InferenceWorkerPool,
  type ModelSlot,
  type ScoringModel,
} from '@linesight/vision';
import {
  LinesightError,
  backoffDelayMs,
  canonicalJson,
  describeError,
  isLinesightError,
  verifySignedManifest,
  type AgentPhase,
  type DesiredState,
  type ErrorCode,
  type Manifest,
  type ModelAssignment,
  type TrustedKey,
} from '@linesight/protocol';
import { modelRefOf } from '../pipeline/model-ref.ts';
import { busyRetryAfterMs, downloadArtifact, type DownloadRequest } from './artifact-downloader.ts';
import type { CloudFetch } from '../cloud-tls.ts';
import { DEFAULT_DISK_MARGIN_BYTES, type FreeBytesProbe } from './disk-space.ts';
import type { ModelStore } from './model-store.ts';
import { watchStep, type SlowStep } from './step-watch.ts';

/** The slot type for models described by their signed manifests. */
export type ManifestSlot = ModelSlot<ScoringModel, Manifest>;

/** What the updater tells the rest of the agent. */
export interface ModelUpdaterHooks {
  phase(phase: AgentPhase): void;
  /** A version went live (or into the shadow slot). */
  activated(manifest: Manifest, source: 'update' | 'restore' | 'shadow' | 'last-known-good'): void;
  /** A version was refused; the live one (if any) keeps running. */
  refused(manifest: Manifest | undefined, err: unknown): void;
  /** The desired revision has been handled (successfully or not). */
  handled(revision: number): void;
  /**
   * A step of an update that cannot be aborted (an fsync, a write, reading the stored
   * artifact) waits beyond its limit (done: false, repeated each limit) or has ended
   * after doing so (done: true). The phase stays as it was: this says why it lasts.
   */
  slow?(manifest: Manifest, slow: SlowStep): void;
}

/** Options of the model updater. */
export interface ModelUpdaterOptions {
  cloudUrl: string;
  username: string;
  password: string;
  /** fetch with the cloud's pinned CA (default: plain fetch). */
  fetch?: CloudFetch;
  /** The keys trusted right now (they change when the cloud rotates keys). */
  trustedKeys: () => TrustedKey[];
  store: ModelStore;
  slot: ManifestSlot;
  shadowSlot: ManifestSlot;
  /** A run slower than this is abandoned and its frame published as unknown. */
  watchdogMs: number;
  downloadTimeoutMs: number;
  /** Starts within which an unstable new version counts as crash-looping. */
  crashLoopStarts: number;
  hooks: ModelUpdaterHooks;
  logger: Logger;
  /** Retry delay after a failed download: attempt -> ms (capped exponential with jitter by default). */
  retryDelayMs?: (attempt: number) => number;
  /** Wait after a busy cloud's 503: its Retry-After in ms -> ms (that plus 0-50 % jitter, at most 5 min, by default). */
  busyDelayMs?: (retryAfterMs: number) => number;
  /** Loads verified model bytes (default: a new WorkerOnnxModel per load, on `workers`). */
  loadModel?: ModelLoader;
  /** Worker threads of the default loader, owned and closed by the caller (default: a new thread per load). */
  workers?: InferenceWorkerPool;
  /** Free space a download must leave on the data disk (default 16 MiB). */
  diskMarginBytes?: number;
  /** Measures free space (statfs by default; tests inject a full disk where they cannot mount one). */
  freeBytes?: FreeBytesProbe;
  /** Flushes a downloaded part file to disk (default: fsync; tests inject a slow disk). */
  syncFile?: DownloadRequest['syncFile'];
  /** Limit of an update step that cannot be aborted (fsync, write, reading the artifact) before it is reported (default: downloadTimeoutMs). */
  stepLimitMs?: number;
}

/** Loads verified model bytes into a scoring model; simulators may share one model per sha256. */
export type ModelLoader = (
  bytes: Uint8Array,
  options: { watchdogMs: number; sha256: string; threadNice?: number },
) => Promise<ScoringModel>;

/** Nice value of a shadow model's inference thread: the live model's threads come first. */
export const SHADOW_THREAD_NICE = 19;

/** Delay before download retry `attempt` (0-based): 1 s doubling to 60 s, half of it jitter. */
export function defaultRetryDelayMs(attempt: number): number {
  return backoffDelayMs(attempt, 1000, 60_000, Math.random());
}

/** The longest wait after a busy cloud's 503, jitter included. */
export const MAX_BUSY_DELAY_MS = 5 * 60_000;

/**
 * Wait after a busy cloud's 503 that asked for `retryAfterMs`: that plus 0-50 %
 * jitter (a fleet told the same time does not come back at once), at most 5 min.
 */
export function defaultBusyDelayMs(retryAfterMs: number): number {
  const base = Math.min(Math.max(0, retryAfterMs), MAX_BUSY_DELAY_MS / 1.5);
  return base * (1 + Math.random() / 2);
}

/**
 * Follows desired state: verify signature, download (resumably), verify hash,
 * load in a new worker beside the live model, check the golden inputs, then
 * swap between two frames. One update at a time; if several desired states
 * arrive meanwhile, only the newest is applied. A failed download is retried
 * with capped backoff until it works or newer desired state arrives; a busy
 * cloud (503 with Retry-After) is asked again after the time it gave, without
 * counting as a failure.
 */
export class ModelUpdater {
  readonly #o: ModelUpdaterOptions;
  #handledRevision = 0;
  #pending: DesiredState | undefined;
  #working: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #closed = false;
  /** Quarantines of live versions, one at a time. */
  #quarantines: Promise<void> = Promise.resolve();
  /** While set, disk-full reports of the model store are collected here instead of sent. */
  #heldDiskFull: Error[] | undefined;

  constructor(options: ModelUpdaterOptions) {
    this.#o = options;
    options.store.onDiskFull = (err) => {
      options.logger.warn({ err: describeError(err) }, 'model state kept in memory only');
      if (this.#heldDiskFull !== undefined) this.#heldDiskFull.push(err);
      else options.hooks.refused(undefined, err);
    };
  }

  /** Runs `work`, holding back the disk-full reports it causes; returns them. */
  async #holdingDiskFull(work: () => Promise<void>): Promise<Error[]> {
    const held: Error[] = [];
    this.#heldDiskFull = held;
    try {
      await work();
    } finally {
      this.#heldDiskFull = undefined;
    }
    return held;
  }

  /** Last desired revision handled. */
  get handledRevision(): number {
    return this.#handledRevision;
  }

  /**
   * Loads the active (else last-known-good) version from disk, if any
   * verifies. An active version that keeps crashing the agent soon after it
   * went live is quarantined, and the last-known-good one runs instead.
   */
  async restore(): Promise<void> {
    try {
      const cleaned = await this.#o.store.clean({
        marginBytes: this.#o.diskMarginBytes ?? DEFAULT_DISK_MARGIN_BYTES,
        ...(this.#o.freeBytes ? { freeBytes: this.#o.freeBytes } : {}),
      });
      if (cleaned.removed.length > 0)
        this.#o.logger.warn(cleaned, 'removed leftovers of interrupted downloads and writes');
    } catch (err) {
      this.#o.logger.warn({ err: describeError(err) }, 'could not clean the models folder');
    }
    let state = await this.#o.store.recordStart();
    if (
      state.active !== null &&
      !state.stable &&
      state.startsSinceActivation >= this.#o.crashLoopStarts
    ) {
      const bad = state.active.manifest;
      const message = `${bad.name}@${bad.version} went live and the agent then restarted ${this.#o.crashLoopStarts} times before it ran stably`;
      state = await this.#o.store.quarantine(bad.sha256, { code: 'ERR_AGENT_CRASH_LOOP', message });
      this.#o.hooks.refused(
        bad,
        new LinesightError(
          'ERR_AGENT_CRASH_LOOP',
          `${message}; running the last-known-good version instead`,
        ),
      );
      if (state.active !== null)
        await this.#restoreOne(state.active.manifest, 'last-known-good', state.active);
      return;
    }
    for (const signed of [state.active, state.lastKnownGood]) {
      if (signed === null) continue;
      if (
        await this.#restoreOne(
          signed.manifest,
          signed === state.active ? 'restore' : 'last-known-good',
          signed,
        )
      )
        return;
    }
  }

  /**
   * Verifies, loads and golden-checks a stored version and makes it live.
   * With `replacing`, it swaps only if that version (sha256) is still live.
   */
  async #restoreOne(
    claimed: Manifest,
    source: 'restore' | 'last-known-good',
    signed: ModelAssignment['signed'],
    replacing?: string,
  ): Promise<boolean> {
    try {
      const manifest = verifySignedManifest(signed, this.#o.trustedKeys());
      const bytes = await this.#o.store.readVerified(manifest.sha256);
      if (bytes === undefined)
        throw new LinesightError(
          'ERR_AGENT_MODEL_VERIFY',
          `stored artifact of ${manifest.name}@${manifest.version} is missing or corrupt`,
        );
      const model = await this.#loadChecked(bytes, manifest);
      if (replacing !== undefined && this.#o.slot.info?.sha256 !== replacing) {
        // An update swapped in a newer version meanwhile: it wins.
        await model.close();
        return false;
      }
      this.#swap(this.#o.slot, model, manifest);
      this.#o.hooks.activated(manifest, source);
      return true;
    } catch (err) {
      this.#o.logger.warn({ err: describeError(err) }, 'stored model could not be restored');
      this.#o.hooks.refused(claimed, err);
      return false;
    }
  }

  /**
   * Quarantines `bad` (as a crash-looping version is: it is not loaded again
   * whatever desired state says) and reports it; if `bad` is live, falls back
   * to last-known-good through the golden-checked load, or else stops running
   * it (frames are then published as unknown until another version goes live).
   * Quarantines run one at a time.
   */
  quarantineLive(bad: Manifest, why: { code: ErrorCode; message: string }): Promise<void> {
    const run = this.#quarantines.then(() => this.#quarantineLive(bad, why));
    this.#quarantines = run.catch(() => undefined);
    return run;
  }

  async #quarantineLive(bad: Manifest, why: { code: ErrorCode; message: string }): Promise<void> {
    const { hooks, slot, store } = this.#o;
    const state = await store.quarantine(bad.sha256, why);
    const fallback = state.active?.manifest.sha256 === bad.sha256 ? null : state.active;
    const next =
      fallback === null
        ? 'no last-known-good version to fall back to: frames are published as unknown until desired state names another version'
        : `falling back to the last-known-good version ${fallback.manifest.name}@${fallback.manifest.version}`;
    this.#o.logger.error({ model: modelRefOf(bad), reason: why.message }, 'model quarantined');
    hooks.refused(bad, new LinesightError(why.code, `${why.message}; quarantined, ${next}`));
    if (this.#closed || slot.info?.sha256 !== bad.sha256) return;
    if (
      fallback !== null &&
      (await this.#restoreOne(fallback.manifest, 'last-known-good', fallback, bad.sha256))
    )
      return;
    if (slot.info?.sha256 !== bad.sha256) return;
    // Nothing (loadable) to fall back to: stop running the quarantined version.
    slot
      .clear()
      .catch((err: unknown) =>
        this.#o.logger.warn({ err: describeError(err) }, 'closing the quarantined model failed'),
      );
    if (this.#working === undefined) hooks.phase('idle');
  }

  /** Queues a desired state; older or already-handled revisions are ignored. */
  apply(doc: DesiredState): void {
    if (this.#closed || doc.revision <= this.#handledRevision) return;
    if (this.#pending !== undefined && this.#pending.revision >= doc.revision) return;
    this.#pending = doc;
    this.#wake?.();
    this.#working ??= this.#drain().finally(() => {
      this.#working = undefined;
    });
  }

  /** Resolves when no update is in progress. */
  async idle(): Promise<void> {
    while (this.#working !== undefined) await this.#working;
  }

  /** Stops taking updates and waits for the current one; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = undefined;
    this.#wake?.();
    await this.idle();
    await this.#quarantines;
  }

  async #drain(): Promise<void> {
    for (let doc = this.#take(); doc !== undefined; doc = this.#take()) {
      const done = await this.#update(doc);
      if (done) {
        this.#handledRevision = doc.revision;
        this.#o.hooks.handled(doc.revision);
      }
    }
  }

  #take(): DesiredState | undefined {
    const doc = this.#pending;
    this.#pending = undefined;
    return this.#closed ? undefined : doc;
  }

  /** Applies one document; false when it was superseded or the updater closed mid-way. */
  async #update(doc: DesiredState): Promise<boolean> {
    const hooks = this.#o.hooks;
    try {
      if (doc.model !== null) {
        const live = await this.#prepare(doc.model, this.#o.slot);
        if (live === 'superseded') return false;
        if (live !== undefined) {
          this.#swap(this.#o.slot, live.model, live.manifest);
          // Recorded before the agent says the version is live: a crash right after must
          // count against this version at the next start (crash-loop detection).
          const diskFull = await this.#holdingDiskFull(() =>
            this.#o.store.activate(doc.model!.signed),
          );
          hooks.activated(live.manifest, 'update');
          // After the hook, so a full disk met while recording stays the device's last error.
          for (const err of diskFull) hooks.refused(undefined, err);
        }
      }
      if (doc.shadow === undefined || doc.shadow === null) {
        await this.#o.shadowSlot.clear();
      } else {
        const shadow = await this.#prepare(doc.shadow, this.#o.shadowSlot);
        if (shadow === 'superseded') return false;
        if (shadow !== undefined) {
          this.#swap(this.#o.shadowSlot, shadow.model, shadow.manifest);
          hooks.activated(shadow.manifest, 'shadow');
        }
      }
      return true;
    } finally {
      hooks.phase(this.#o.slot.hasModel ? 'running' : 'idle');
    }
  }

  /**
   * Verifies, fetches and loads one assignment unless `slot` already runs it.
   * Returns undefined when nothing is to be swapped (already running, or refused).
   */
  async #prepare(
    assignment: ModelAssignment,
    slot: ManifestSlot,
  ): Promise<{ model: ScoringModel; manifest: Manifest } | undefined | 'superseded'> {
    const hooks = this.#o.hooks;
    let manifest: Manifest | undefined;
    try {
      hooks.phase('verifying');
      manifest = verifySignedManifest(assignment.signed, this.#o.trustedKeys());
      // Checked before "already live": a quarantined version still live is about to be replaced.
      const state = await this.#o.store.readState();
      if (state.quarantined.includes(manifest.sha256)) {
        const reason = state.quarantineReasons[manifest.sha256];
        throw new LinesightError(
          reason?.code ?? 'ERR_AGENT_CRASH_LOOP',
          `${manifest.name}@${manifest.version} is quarantined on this device (${reason?.message ?? 'it made the agent crash-loop'}); it is not loaded again (publish a new version)`,
        );
      }
      // Same bytes under another name or version (republished unchanged) go live again below,
      // from the stored file, so the device reports the version it was told to run.
      if (
        slot.info?.sha256 === manifest.sha256 &&
        slot.info.name === manifest.name &&
        slot.info.version === manifest.version
      )
        return undefined;
      const verified = manifest;
      const onSlow = (slow: SlowStep) => this.#slowStep(verified, slow);
      const stepLimitMs = this.#o.stepLimitMs ?? this.#o.downloadTimeoutMs;
      const readStored = () =>
        watchStep(
          `reading and checking the stored artifact of ${verified.name}@${verified.version}`,
          stepLimitMs,
          onSlow,
          () => this.#o.store.readVerified(verified.sha256),
        );
      let bytes = await readStored();
      let failures = 0;
      let deferrals = 0;
      while (bytes === undefined) {
        hooks.phase('downloading');
        try {
          await downloadArtifact({
            url: new URL(assignment.artifactUrl, this.#o.cloudUrl).toString(),
            manifest,
            username: this.#o.username,
            password: this.#o.password,
            ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}),
            destPath: this.#o.store.artifactPath(manifest.sha256),
            timeoutMs: this.#o.downloadTimeoutMs,
            marginBytes: this.#o.diskMarginBytes ?? DEFAULT_DISK_MARGIN_BYTES,
            ...(this.#o.freeBytes ? { freeBytes: this.#o.freeBytes } : {}),
            ...(this.#o.syncFile ? { syncFile: this.#o.syncFile } : {}),
            onSlowStep: onSlow,
            stepLimitMs,
          });
          bytes = await readStored();
          if (bytes === undefined)
            throw new LinesightError(
              'ERR_AGENT_MODEL_VERIFY',
              `artifact of ${manifest.name}@${manifest.version} changed on disk after download`,
            );
        } catch (err) {
          if (!isLinesightError(err, 'ERR_AGENT_DOWNLOAD')) throw err;
          const retryAfterMs = busyRetryAfterMs(err);
          if (retryAfterMs !== undefined) {
            // Back-pressure, not a failure: no backoff step, nothing reported as refused.
            const waitMs = (this.#o.busyDelayMs ?? defaultBusyDelayMs)(retryAfterMs);
            deferrals++;
            this.#o.logger[deferrals === 1 ? 'info' : 'debug'](
              {
                model: modelRefOf(manifest),
                retryAfterMs: Math.round(retryAfterMs),
                waitMs: Math.round(waitMs),
                deferrals,
              },
              'cloud busy: download deferred; will ask again',
            );
            if (await this.#sleepUnlessSuperseded(waitMs)) return 'superseded';
            continue;
          }
          const delayMs = (this.#o.retryDelayMs ?? defaultRetryDelayMs)(failures++);
          this.#o.logger.warn(
            { err: describeError(err), retryInMs: Math.round(delayMs) },
            'download failed; will retry',
          );
          hooks.refused(manifest, err);
          if (await this.#sleepUnlessSuperseded(delayMs)) return 'superseded';
        }
      }
      hooks.phase('loading');
      return {
        model: await this.#loadChecked(bytes, manifest, slot === this.#o.shadowSlot),
        manifest,
      };
    } catch (err) {
      this.#o.logger.error(
        { err: describeError(err), model: manifest ? modelRefOf(manifest) : undefined },
        'model refused',
      );
      hooks.refused(manifest ?? assignment.signed.manifest, err);
      return undefined;
    }
  }

  /** Says (log line, hook: event and reported state) that a step waits beyond its limit, or has ended. */
  #slowStep(manifest: Manifest, slow: SlowStep): void {
    const fields = {
      model: modelRefOf(manifest),
      step: slow.step,
      waitedSec: Math.round(slow.waitedMs / 1000),
      limitSec: Math.round(slow.limitMs / 1000),
    };
    if (slow.done) this.#o.logger.info(fields, 'slow model update step finished');
    else this.#o.logger.warn(fields, 'model update step waiting beyond its limit (still waiting)');
    this.#o.hooks.slow?.(manifest, slow);
  }

  /** Waits `ms`; true when newer desired state arrived or the updater closed meanwhile. */
  async #sleepUnlessSuperseded(ms: number): Promise<boolean> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
    return this.#closed || this.#pending !== undefined;
  }

  /** Loads a model in its own worker and checks it against its manifest and golden inputs. */
  async #loadChecked(bytes: Uint8Array, manifest: Manifest, shadow = false): Promise<ScoringModel> {
    const label = `${manifest.name}@${manifest.version}`;
    const nice = shadow ? { threadNice: SHADOW_THREAD_NICE } : {};
    const model = this.#o.loadModel
      ? await this.#o.loadModel(bytes, {
          watchdogMs: this.#o.watchdogMs,
          sha256: manifest.sha256,
          ...nice,
        })
      : await WorkerOnnxModel.load(bytes, {
          watchdogMs: this.#o.watchdogMs,
          ...nice,
          ...(this.#o.workers ? { workers: this.#o.workers } : {}),
        });
    try {
      if (canonicalJson(model.contract.inputSpec) !== canonicalJson(manifest.inputSpec)) {
        throw new LinesightError(
          'ERR_AGENT_MODEL_VERIFY',
          `${label}: the model's own input spec differs from its signed manifest`,
        );
      }
      // Golden check: each standard input must give a finite score of the declared
      // shape, matching the reference the cloud signed when the manifest has one.
      // It judges correctness, not speed: a session's first runs are slow (allocation,
      // kernel choice) and slower on a busy box, so the frame watchdog would refuse a good
      // model there. A model that hangs on them is still refused, at the longer limit.
      const inputs = goldenInputs(manifest.inputSpec);
      const watchdogMs = goldenWatchdogMs(this.#o.watchdogMs);
      for (const [i, input] of inputs.entries()) {
        const { score } = await model.run(input, { watchdogMs });
        const reference = manifest.golden?.scores[i];
        if (
          reference !== undefined &&
          !withinGoldenTolerance(score, reference, manifest.golden!.tolerance)
        ) {
          throw new LinesightError(
            'ERR_MODEL_OUTPUT',
            `${label} scores golden input ${i} as ${score}; its manifest says ${reference}`,
          );
        }
      }
    } catch (err) {
      await model.close();
      if (isLinesightError(err)) throw err;
      throw new LinesightError('ERR_MODEL_OUTPUT', `${label} failed its golden check`, {
        cause: err,
      });
    }
    return model;
  }

  /** Swaps a model into a slot between two frames; the old one closes after its in-flight frame. */
  #swap(slot: ManifestSlot, model: ScoringModel, manifest: Manifest): void {
    slot
      .swap(model, manifest)
      .catch((err: unknown) =>
        this.#o.logger.warn({ err: describeError(err) }, 'closing the previous model failed'),
      );
  }
}

/** The golden check's watchdog limit: ten frame limits, and at least 30 s. */
export function goldenWatchdogMs(frameWatchdogMs: number): number {
  return Math.max(30_000, 10 * frameWatchdogMs);
}
