import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, type SignedManifest } from '@linesight/protocol';
import { writeFileAtomic } from '../atomic-file.ts';

/** Which versions the device runs and falls back to, persisted across restarts. */
export interface ModelStoreState {
  active: SignedManifest | null;
  lastKnownGood: SignedManifest | null;
  /** When `active` went live. */
  activatedAt: string | null;
  /** Agent starts since `active` went live; reset once it has run stably. */
  startsSinceActivation: number;
  /** `active` has run long enough without a crash to count as good. */
  stable: boolean;
  /** Artifacts (sha256) that made the agent crash-loop; never activated again. */
  quarantined: string[];
}

const EMPTY: ModelStoreState = {
  active: null,
  lastKnownGood: null,
  activatedAt: null,
  startsSinceActivation: 0,
  stable: true,
  quarantined: [],
};

/**
 * Verified model artifacts on local disk, by sha256, plus which one is
 * active, which is last-known-good, and how the active one has fared.
 * Keeps only those two artifacts (and a part file while downloading).
 */
export class ModelStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'models');
  }

  /** Path of an artifact by its sha256. */
  artifactPath(sha256: string): string {
    return join(this.dir, `${sha256}.onnx`);
  }

  /** The persisted state; empty when none was saved. */
  async readState(): Promise<ModelStoreState> {
    try {
      return {
        ...EMPTY,
        ...(JSON.parse(
          await readFile(join(this.dir, 'state.json'), 'utf8'),
        ) as Partial<ModelStoreState>),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...EMPTY };
      throw err;
    }
  }

  async #write(state: ModelStoreState): Promise<void> {
    await writeFileAtomic(join(this.dir, 'state.json'), JSON.stringify(state, null, 2));
  }

  /** Reads an artifact and returns it only if its bytes still hash to `sha256`. */
  async readVerified(sha256: string): Promise<Uint8Array | undefined> {
    try {
      const bytes = await readFile(this.artifactPath(sha256));
      return sha256Hex(bytes) === sha256 ? bytes : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Counts an agent start against an active version that has not proven stable; returns the new state. */
  async recordStart(): Promise<ModelStoreState> {
    const state = await this.readState();
    if (state.active === null || state.stable) return state;
    const next = { ...state, startsSinceActivation: state.startsSinceActivation + 1 };
    await this.#write(next);
    return next;
  }

  /** Marks the active version as stable (it ran long enough without a crash). */
  async markStable(sha256: string): Promise<void> {
    const state = await this.readState();
    if (state.active?.manifest.sha256 !== sha256 || state.stable) return;
    await this.#write({ ...state, stable: true, startsSinceActivation: 0 });
  }

  /** Quarantines the active version and makes last-known-good active again. */
  async quarantineActive(): Promise<ModelStoreState> {
    const state = await this.readState();
    if (state.active === null) return state;
    const next: ModelStoreState = {
      active: state.lastKnownGood,
      lastKnownGood: null,
      activatedAt: new Date().toISOString(),
      startsSinceActivation: 0,
      stable: true,
      quarantined: [...new Set([...state.quarantined, state.active.manifest.sha256])].slice(-20),
    };
    await this.#write(next);
    return next;
  }

  /** Records `signed` as active; the previous active becomes last-known-good; older files are removed. */
  async activate(signed: SignedManifest): Promise<void> {
    const state = await this.readState();
    const previous = state.active;
    if (previous?.manifest.sha256 === signed.manifest.sha256) return;
    const next: ModelStoreState = {
      ...state,
      active: signed,
      lastKnownGood: previous ?? state.lastKnownGood,
      activatedAt: new Date().toISOString(),
      startsSinceActivation: 0,
      stable: false,
    };
    await this.#write(next);
    const keep = new Set([next.active?.manifest.sha256, next.lastKnownGood?.manifest.sha256]);
    for (const old of [state.active, state.lastKnownGood]) {
      if (old !== null && !keep.has(old.manifest.sha256))
        await rm(this.artifactPath(old.manifest.sha256), { force: true });
    }
  }
}
