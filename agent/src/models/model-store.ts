import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, type SignedManifest } from '@linesight/protocol';
import { writeFileAtomic } from '../atomic-file.ts';

/** Which versions the device runs and falls back to, persisted across restarts. */
export interface ModelStoreState {
  active: SignedManifest | null;
  lastKnownGood: SignedManifest | null;
}

/**
 * Verified model artifacts on local disk, by sha256, plus which one is
 * active and which is last-known-good. Keeps only those two.
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
      return JSON.parse(await readFile(join(this.dir, 'state.json'), 'utf8')) as ModelStoreState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { active: null, lastKnownGood: null };
      throw err;
    }
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

  /** Records `signed` as active; the previous active becomes last-known-good; older files are removed. */
  async activate(signed: SignedManifest): Promise<void> {
    const state = await this.readState();
    const previous = state.active;
    const next: ModelStoreState = {
      active: signed,
      lastKnownGood:
        previous !== null && previous.manifest.sha256 !== signed.manifest.sha256
          ? previous
          : state.lastKnownGood,
    };
    await writeFileAtomic(join(this.dir, 'state.json'), JSON.stringify(next, null, 2));
    const keep = new Set([next.active?.manifest.sha256, next.lastKnownGood?.manifest.sha256]);
    for (const old of [state.active, state.lastKnownGood]) {
      if (old !== null && !keep.has(old.manifest.sha256))
        await rm(this.artifactPath(old.manifest.sha256), { force: true });
    }
  }
}
