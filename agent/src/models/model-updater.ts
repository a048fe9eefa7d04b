import type { Logger } from 'pino';
import { OnnxModel } from '@linesight/vision';
import {
  LinesightError,
  canonicalJson,
  describeError,
  verifySignedManifest,
  type AgentPhase,
  type DesiredState,
  type Manifest,
  type SignedManifest,
  type TrustedKey,
} from '@linesight/protocol';
import type { AgentModelSlot } from '../pipeline/frame-pipeline.ts';
import { modelRefOf } from '../pipeline/frame-pipeline.ts';
import { downloadArtifact } from './artifact-downloader.ts';
import type { ModelStore } from './model-store.ts';

/** What the updater tells the rest of the agent. */
export interface ModelUpdaterHooks {
  phase(phase: AgentPhase): void;
  /** A version went live. */
  activated(manifest: Manifest, source: 'update' | 'restore'): void;
  /** A version was refused; the live one (if any) keeps running. */
  refused(manifest: Manifest | undefined, err: unknown): void;
  /** The desired revision has been handled (successfully or not). */
  handled(revision: number): void;
}

/** Options of the model updater. */
export interface ModelUpdaterOptions {
  cloudUrl: string;
  username: string;
  password: string;
  trustedKeys: TrustedKey[];
  store: ModelStore;
  slot: AgentModelSlot;
  downloadTimeoutMs: number;
  hooks: ModelUpdaterHooks;
  logger: Logger;
}

/**
 * Follows desired state: verify signature, download, verify hash, load beside
 * the live model, check it on a golden input, then swap. One update at a
 * time; if several desired states arrive meanwhile, only the newest is applied.
 */
export class ModelUpdater {
  readonly #o: ModelUpdaterOptions;
  #handledRevision = 0;
  #pending: DesiredState | undefined;
  #working: Promise<void> | undefined;
  #closed = false;

  constructor(options: ModelUpdaterOptions) {
    this.#o = options;
  }

  /** Last desired revision handled. */
  get handledRevision(): number {
    return this.#handledRevision;
  }

  /** Loads the active (else last-known-good) version from disk, if any verifies. */
  async restore(): Promise<void> {
    const state = await this.#o.store.readState();
    for (const signed of [state.active, state.lastKnownGood]) {
      if (signed === null) continue;
      try {
        const manifest = verifySignedManifest(signed, this.#o.trustedKeys);
        const bytes = await this.#o.store.readVerified(manifest.sha256);
        if (bytes === undefined)
          throw new LinesightError(
            'ERR_AGENT_MODEL_VERIFY',
            `stored artifact of ${manifest.name}@${manifest.version} is missing or corrupt`,
          );
        await this.#loadAndSwap(bytes, manifest);
        this.#o.hooks.activated(manifest, 'restore');
        return;
      } catch (err) {
        this.#o.logger.warn({ err: describeError(err) }, 'stored model could not be restored');
        this.#o.hooks.refused(signed.manifest, err);
      }
    }
  }

  /** Queues a desired state; older or already-handled revisions are ignored. */
  apply(doc: DesiredState): void {
    if (this.#closed || doc.revision <= this.#handledRevision) return;
    if (this.#pending !== undefined && this.#pending.revision >= doc.revision) return;
    this.#pending = doc;
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
    await this.idle();
  }

  async #drain(): Promise<void> {
    for (let doc = this.#take(); doc !== undefined; doc = this.#take()) {
      await this.#update(doc);
      this.#handledRevision = doc.revision;
      this.#o.hooks.handled(doc.revision);
    }
  }

  #take(): DesiredState | undefined {
    const doc = this.#pending;
    this.#pending = undefined;
    return this.#closed ? undefined : doc;
  }

  async #update(doc: DesiredState): Promise<void> {
    const hooks = this.#o.hooks;
    if (doc.model === null) return;
    let manifest: Manifest | undefined;
    try {
      hooks.phase('verifying');
      manifest = verifySignedManifest(doc.model.signed, this.#o.trustedKeys);
      if (this.#o.slot.info?.sha256 === manifest.sha256) {
        hooks.phase('running');
        return;
      }
      const path = this.#o.store.artifactPath(manifest.sha256);
      let bytes = await this.#o.store.readVerified(manifest.sha256);
      if (bytes === undefined) {
        hooks.phase('downloading');
        await downloadArtifact({
          url: new URL(doc.model.artifactUrl, this.#o.cloudUrl).toString(),
          manifest,
          username: this.#o.username,
          password: this.#o.password,
          destPath: path,
          timeoutMs: this.#o.downloadTimeoutMs,
        });
        bytes = await this.#o.store.readVerified(manifest.sha256);
        if (bytes === undefined)
          throw new LinesightError(
            'ERR_AGENT_MODEL_VERIFY',
            `artifact of ${manifest.name}@${manifest.version} changed on disk after download`,
          );
      }
      hooks.phase('loading');
      await this.#loadAndSwap(bytes, manifest);
      await this.#o.store.activate(doc.model.signed as SignedManifest);
      hooks.activated(manifest, 'update');
    } catch (err) {
      this.#o.logger.error(
        { err: describeError(err), model: manifest ? modelRefOf(manifest) : undefined },
        'model update refused',
      );
      hooks.refused(manifest ?? doc.model.signed.manifest, err);
    } finally {
      hooks.phase(this.#o.slot.hasModel ? 'running' : 'idle');
    }
  }

  async #loadAndSwap(bytes: Uint8Array, manifest: Manifest): Promise<void> {
    const label = `${manifest.name}@${manifest.version}`;
    const model = await OnnxModel.load(bytes);
    try {
      if (canonicalJson(model.contract.inputSpec) !== canonicalJson(manifest.inputSpec)) {
        throw new LinesightError(
          'ERR_AGENT_MODEL_VERIFY',
          `${label}: the model's own input spec differs from its signed manifest`,
        );
      }
      // Golden check: a neutral input must give a finite score of the declared shape.
      const { channels, height, width } = manifest.inputSpec;
      const golden = await model.run(new Float32Array(channels * height * width));
      if (!Number.isFinite(golden.score)) {
        throw new LinesightError(
          'ERR_MODEL_OUTPUT',
          `${label} gives a non-finite score on the golden input`,
        );
      }
    } catch (err) {
      await model.close();
      throw err;
    }
    // The swap is synchronous between frames; the old model closes after its in-flight frame.
    const retired = this.#o.slot.swap(model, manifest);
    retired.catch((err: unknown) =>
      this.#o.logger.warn({ err: describeError(err) }, 'closing the previous model failed'),
    );
  }
}
