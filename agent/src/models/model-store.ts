import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  canonicalJson,
  sha256Hex,
  type ErrorCode,
  type LinesightError,
  type SignedManifest,
} from '@linesight/protocol';
import { writeFileAtomic } from '@linesight/durable-fs';
import {
  DEFAULT_DISK_MARGIN_BYTES,
  diskFullError,
  freeBytesAt,
  isDiskFull,
  type FreeBytesProbe,
} from './disk-space.ts';

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
  /** Artifacts (sha256) that made the agent crash-loop or hang; never activated again. */
  quarantined: string[];
  /** Why each quarantined artifact was quarantined, by sha256 (absent in older state files). */
  quarantineReasons: Record<string, QuarantineReason>;
}

/** Why a version was quarantined, kept to refuse it again with the same code. */
export interface QuarantineReason {
  code: ErrorCode;
  message: string;
  at: string;
}

/** Quarantined versions remembered (oldest forgotten first). */
const MAX_QUARANTINED = 20;

const EMPTY: ModelStoreState = {
  active: null,
  lastKnownGood: null,
  activatedAt: null,
  startsSinceActivation: 0,
  stable: true,
  quarantined: [],
  quarantineReasons: {},
};

/** What start-up cleaning removed from the models folder. */
export interface CleanReport {
  removed: string[];
  freeBytes: number;
}

/**
 * Verified model artifacts on local disk, by sha256, plus which one is
 * active, which is last-known-good, and how the active one has fared.
 * Keeps only those two artifacts (and a part file while downloading).
 * State changes run one at a time, so concurrent ones are never lost.
 * When the disk is full a state change still takes effect in memory (the
 * agent keeps running and can roll back), `onDiskFull` is told, and the
 * next successful write persists it.
 */
export class ModelStore {
  readonly dir: string;
  #mutations: Promise<unknown> = Promise.resolve();
  /** State that could not be written (disk full); it wins over the file until written. */
  #unsaved: ModelStoreState | undefined;
  /** Told when a state write fails because the disk is full. */
  onDiskFull: ((err: LinesightError) => void) | undefined;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'models');
  }

  /**
   * Start-up repair of the models folder: removes temp files of interrupted
   * state writes and every part file but the newest (an interrupted download
   * resumes from it); when less than `marginBytes` is then free, removes that
   * part file too and any artifact that is neither active nor last-known-good,
   * so a disk filled by a download never keeps the agent from starting.
   */
  async clean(
    options: { marginBytes?: number; freeBytes?: FreeBytesProbe } = {},
  ): Promise<CleanReport> {
    const probe = options.freeBytes ?? freeBytesAt;
    const marginBytes = options.marginBytes ?? DEFAULT_DISK_MARGIN_BYTES;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { removed: [], freeBytes: Number.NaN };
      throw err;
    }
    const removed: string[] = [];
    const remove = async (name: string) => {
      await rm(join(this.dir, name), { force: true });
      removed.push(name);
    };
    for (const name of names.filter((n) => n.includes('.tmp-'))) await remove(name);
    const parts = await Promise.all(
      names
        .filter((n) => n.endsWith('.part'))
        .map(async (name) => ({ name, mtimeMs: (await stat(join(this.dir, name))).mtimeMs })),
    );
    parts.sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const { name } of parts.slice(1)) await remove(name);
    let freeBytes = await probe(this.dir);
    if (freeBytes < marginBytes) {
      const state = await this.readState();
      const keep = new Set(
        [state.active, state.lastKnownGood].map((s) => s && `${s.manifest.sha256}.onnx`),
      );
      for (const name of names) {
        if ((name.endsWith('.part') && parts[0]?.name === name) || name.endsWith('.onnx')) {
          if (!keep.has(name)) await remove(name);
        }
      }
      freeBytes = await probe(this.dir);
    }
    return { removed, freeBytes };
  }

  /** Path of an artifact by its sha256. */
  artifactPath(sha256: string): string {
    return join(this.dir, `${sha256}.onnx`);
  }

  /** The persisted state (or the one a full disk kept from being written); empty when none was saved. */
  async readState(): Promise<ModelStoreState> {
    if (this.#unsaved !== undefined) return structuredClone(this.#unsaved);
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
    try {
      await writeFileAtomic(join(this.dir, 'state.json'), JSON.stringify(state, null, 2));
      this.#unsaved = undefined;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.#unsaved = structuredClone(state);
      this.onDiskFull?.(diskFullError('the model state file could not be written', err));
    }
  }

  /** Runs a read-modify-write of the state after the ones before it. */
  #mutate<T>(change: (state: ModelStoreState) => Promise<T>): Promise<T> {
    const run = this.#mutations.then(async () => change(await this.readState()));
    this.#mutations = run.catch(() => undefined);
    return run;
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
  recordStart(): Promise<ModelStoreState> {
    return this.#mutate(async (state) => {
      if (state.active === null || state.stable) return state;
      const next = { ...state, startsSinceActivation: state.startsSinceActivation + 1 };
      await this.#write(next);
      return next;
    });
  }

  /** Marks the active version as stable (it ran long enough without a crash). */
  markStable(sha256: string): Promise<void> {
    return this.#mutate(async (state) => {
      if (state.active?.manifest.sha256 !== sha256 || state.stable) return;
      await this.#write({ ...state, stable: true, startsSinceActivation: 0 });
    });
  }

  /**
   * Quarantines a version for good; when it is the active one, last-known-good
   * becomes active again (and there is no last-known-good any more). Returns
   * the new state.
   */
  quarantine(sha256: string, reason: Omit<QuarantineReason, 'at'>): Promise<ModelStoreState> {
    return this.#mutate(async (state) => {
      const quarantined = [...state.quarantined.filter((q) => q !== sha256), sha256].slice(
        -MAX_QUARANTINED,
      );
      const reasons: Record<string, QuarantineReason> = {};
      for (const q of quarantined) {
        const known = q === sha256 ? { ...reason, at: new Date().toISOString() } : undefined;
        const kept = known ?? state.quarantineReasons[q];
        if (kept !== undefined) reasons[q] = kept;
      }
      const next: ModelStoreState = { ...state, quarantined, quarantineReasons: reasons };
      if (state.active?.manifest.sha256 === sha256) {
        Object.assign(next, {
          active: state.lastKnownGood,
          lastKnownGood: null,
          activatedAt: new Date().toISOString(),
          startsSinceActivation: 0,
          stable: true,
        });
      } else if (state.lastKnownGood?.manifest.sha256 === sha256) {
        next.lastKnownGood = null;
      }
      await this.#write(next);
      return next;
    });
  }

  /**
   * Records `signed` as active; the previous active becomes last-known-good;
   * older files are removed. The same bytes under another manifest (a version
   * republished unchanged) replace the active manifest and keep the rest.
   */
  activate(signed: SignedManifest): Promise<void> {
    return this.#mutate(async (state) => {
      const previous = state.active;
      if (previous?.manifest.sha256 === signed.manifest.sha256) {
        if (canonicalJson(previous) !== canonicalJson(signed))
          await this.#write({ ...state, active: signed });
        return;
      }
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
    });
  }
}
