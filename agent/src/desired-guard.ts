import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  LinesightError,
  verifyDocument,
  type DesiredState,
  type TrustedKey,
} from '@linesight/protocol';
import { writeFileAtomic } from '@linesight/durable-fs';
import { isDiskFull } from './models/disk-space.ts';

interface GuardState {
  trustVersion: number;
  keys: TrustedKey[];
  acceptedRevision: number;
  acceptedSignature: string | null;
}

/**
 * Decides whether a desired-state document may be acted on: signed by a
 * trusted key, not expired, and newer than the last one accepted (so a
 * replayed or rolled-back document is refused, across restarts too). It also
 * follows key rotation: a newer trust list signed by a key the device already
 * trusts replaces its key set. State lives in `<dataDir>/desired-guard.json`.
 */
export class DesiredGuard {
  readonly #path: string;
  #state: GuardState;
  /** Told when the guard's state could not be written because the disk is full. */
  onDiskFull: ((err: unknown) => void) | undefined;

  private constructor(path: string, state: GuardState) {
    this.#path = path;
    this.#state = state;
  }

  /** Loads the guard's state, starting from the provisioned keys the first time. */
  static async open(dataDir: string, provisionedKeys: TrustedKey[]): Promise<DesiredGuard> {
    const path = join(dataDir, 'desired-guard.json');
    try {
      return new DesiredGuard(path, JSON.parse(await readFile(path, 'utf8')) as GuardState);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new DesiredGuard(path, {
      trustVersion: 0,
      keys: provisionedKeys,
      acceptedRevision: 0,
      acceptedSignature: null,
    });
  }

  /** The keys this device trusts now. */
  get trustedKeys(): TrustedKey[] {
    return this.#state.keys;
  }

  /** The version of the trust list in force (0 = as provisioned). */
  get trustVersion(): number {
    return this.#state.trustVersion;
  }

  /**
   * Checks a document; resolves with it when it may be applied, rejects with
   * ERR_SIGNATURE_*, ERR_DESIRED_EXPIRED or ERR_DESIRED_REPLAY otherwise.
   * Re-delivery of the accepted document itself (a retained message after a
   * reconnect) is accepted.
   */
  async check(doc: DesiredState, now: Date = new Date()): Promise<DesiredState> {
    let state = this.#state;
    if (doc.trust !== undefined && doc.trust.version > state.trustVersion) {
      verifyDocument(doc.trust, state.keys, `trust list v${doc.trust.version}`);
      state = { ...state, trustVersion: doc.trust.version, keys: doc.trust.keys };
    }
    verifyDocument(doc, state.keys, `desired state revision ${doc.revision}`);
    if (Date.parse(doc.expiresAt) <= now.getTime()) {
      throw new LinesightError(
        'ERR_DESIRED_EXPIRED',
        `desired state revision ${doc.revision} expired at ${doc.expiresAt}`,
      );
    }
    const redelivery =
      doc.revision === state.acceptedRevision && doc.signature === state.acceptedSignature;
    if (doc.revision <= state.acceptedRevision && !redelivery) {
      throw new LinesightError(
        'ERR_DESIRED_REPLAY',
        `desired state revision ${doc.revision} is not newer than accepted revision ${state.acceptedRevision}`,
      );
    }
    state = { ...state, acceptedRevision: doc.revision, acceptedSignature: doc.signature };
    if (state !== this.#state) {
      try {
        await writeFileAtomic(this.#path, JSON.stringify(state, null, 2));
      } catch (err) {
        // A full disk must not block a rollback: the document is accepted and
        // held in memory (replays stay refused while the agent runs), and the
        // next accepted document writes the state again.
        if (!isDiskFull(err)) throw err;
        this.onDiskFull?.(err);
      }
      this.#state = state;
    }
    return doc;
  }
}
