import { readFile } from 'node:fs/promises';
import { goldenScoresOf, readModelContract } from '@linesight/vision';
import { readContractFromFile } from './onnx-file-contract.ts';
import {
  LinesightError,
  isLinesightError,
  isSemver,
  sha256Hex,
  signManifest,
  type Manifest,
} from '@linesight/protocol';
import type { KeyRing } from '../signing/key-ring.ts';
import type { BlobStore } from '../blobs/blob-store.ts';
import type { AuditLog } from '../registry/audit-log.ts';
import {
  MODEL_STAGES,
  type ModelRegistry,
  type ModelStage,
  type ModelVersion,
} from '../registry/model-registry.ts';

// CPU kernels differ slightly across machines (SIMD widths); 1e-3 relative is far below any decision margin.
const GOLDEN_TOLERANCE = 1e-3;
const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** Registers model versions: validates the ONNX file, stores it, signs its manifest. */
export class ModelService {
  readonly #registry: ModelRegistry;
  readonly #blobs: BlobStore;
  readonly #keys: KeyRing;
  readonly #audit: AuditLog;

  constructor(deps: { registry: ModelRegistry; blobs: BlobStore; keys: KeyRing; audit: AuditLog }) {
    this.#registry = deps.registry;
    this.#blobs = deps.blobs;
    this.#keys = deps.keys;
    this.#audit = deps.audit;
  }

  /**
   * Records a second actor's approval for production. The actor who
   * registered a version cannot approve it.
   */
  approve(name: string, version: string, actor: string): ModelVersion {
    const model = this.#registry.get(name, version);
    if (model.createdBy === actor) {
      throw new LinesightError(
        'ERR_CLOUD_FORBIDDEN',
        `${actor} registered ${name}@${version} and cannot approve it; a second actor must`,
      );
    }
    this.#registry.approve(name, version, actor);
    this.#audit.record(actor, 'model.approve', `${name}@${version}`, {
      registeredBy: model.createdBy,
    });
    return this.#registry.get(name, version);
  }

  /** Moves a version to a stage; production needs an approval first. */
  setStage(name: string, version: string, stage: string, actor: string): ModelVersion {
    if (!(MODEL_STAGES as readonly string[]).includes(stage)) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `unknown stage ${JSON.stringify(stage)}: use ${MODEL_STAGES.join(', ')}`,
      );
    }
    const model = this.#registry.get(name, version);
    if (stage === 'production' && model.approvedBy === null) {
      throw new LinesightError(
        'ERR_CLOUD_FORBIDDEN',
        `${name}@${version} needs an approval by an actor other than ${model.createdBy} before production (POST .../approve)`,
      );
    }
    const replaced =
      stage === 'production'
        ? this.#registry
            .list()
            .filter((m) => m.name === name && m.stage === 'production' && m.version !== version)
        : [];
    this.#registry.setStage(name, version, stage as ModelStage);
    this.#audit.record(actor, 'model.stage', `${name}@${version}`, {
      from: model.stage,
      to: stage,
      approvedBy: model.approvedBy,
    });
    for (const old of replaced) {
      this.#audit.record(actor, 'model.stage', `${name}@${old.version}`, {
        from: 'production',
        to: 'archived',
        replacedBy: version,
      });
    }
    return this.#registry.get(name, version);
  }

  /**
   * Re-signs, with the active key, every manifest whose key is no longer
   * trusted (after a key is retired); returns how many were re-signed.
   */
  resignUntrusted(): number {
    const trusted = new Set(this.#keys.trusted.map((k) => k.keyId));
    const key = this.#keys.active;
    let count = 0;
    for (const model of this.#registry.list()) {
      if (trusted.has(model.signed.manifest.keyId)) continue;
      this.#registry.updateSigned(
        model.name,
        model.version,
        signManifest({ ...model.signed.manifest, keyId: key.keyId }, key),
      );
      count++;
    }
    return count;
  }

  /** Validates, stores and signs a new model version held in memory. */
  async register(input: {
    name: string;
    version: string;
    onnx: Uint8Array;
    actor: string;
    parentVersion?: string;
  }): Promise<ModelVersion> {
    this.#checkNew(input);
    const { onnx } = input;
    return this.#register(input, onnx, sha256Hex(onnx), (key) => this.#blobs.put(key, onnx));
  }

  /**
   * Validates, stores and signs a new model version from a file on disk (a
   * streamed upload). The contract is read from the file's headers first, so
   * a bogus file is refused without being loaded; a valid one is loaded once
   * for the golden check and then moved (local store) or streamed (S3) into
   * the blob store. The caller removes the file if this throws.
   */
  async registerFile(input: {
    name: string;
    version: string;
    path: string;
    sha256: string;
    actor: string;
    parentVersion?: string;
  }): Promise<ModelVersion> {
    this.#checkNew(input);
    await readContractFromFile(input.path);
    const onnx = await readFile(input.path);
    return this.#register(input, onnx, input.sha256, (key) =>
      this.#blobs.putFile(key, input.path, { sha256: input.sha256 }),
    );
  }

  #checkNew(input: { name: string; version: string; parentVersion?: string }): void {
    const { name, version } = input;
    if (!NAME.test(name)) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid model name ${JSON.stringify(name)}: use 1-64 of a-z 0-9 _ . - starting with a letter or digit`,
      );
    }
    if (!isSemver(version)) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid version ${JSON.stringify(version)}: use semantic versioning (semver.org, at most 64 characters), e.g. 1.2.0, 1.3.0-rc.1 or 1.2.0+build.7`,
      );
    }
    if (input.parentVersion !== undefined && !this.#registry.has(name, input.parentVersion)) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `parent version ${name}@${input.parentVersion} is not registered`,
      );
    }
    if (this.#registry.has(name, version)) {
      throw new LinesightError(
        'ERR_CLOUD_CONFLICT',
        `model ${name}@${version} is already registered; versions are immutable, publish a new version`,
      );
    }
  }

  async #register(
    input: { name: string; version: string; actor: string; parentVersion?: string },
    onnx: Uint8Array,
    sha256: string,
    store: (blobKey: string) => Promise<void>,
  ): Promise<ModelVersion> {
    const { name, version } = input;
    const contract = readModelContract(onnx);
    // Loading proves the file is a model onnxruntime can run with the declared input and outputs;
    // its scores on the standard golden inputs go into the manifest for devices to reproduce.
    let goldenScores: number[];
    try {
      goldenScores = await goldenScoresOf(onnx);
    } catch (err) {
      // Unusable output on the standard inputs (NaN, wrong shape) is a bad upload, not a server fault.
      if (!isLinesightError(err, 'ERR_MODEL_OUTPUT')) throw err;
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `${name}@${version} cannot be registered: on the standard golden inputs, ${err.message}`,
        { cause: err },
      );
    }
    // Blob keys take no "+": build metadata is spelled with "_", which a version never contains.
    const blobKey = `models/${name}/${version.replace('+', '_')}/${sha256}.onnx`;
    await store(blobKey);
    const manifest: Manifest = {
      schema: 'linesight.manifest/v1',
      name,
      version,
      sha256,
      sizeBytes: onnx.byteLength,
      inputSpec: contract.inputSpec,
      outputs: contract.outputs,
      threshold: contract.threshold,
      issuedAt: new Date().toISOString(),
      keyId: this.#keys.active.keyId,
      golden: { scores: goldenScores, tolerance: GOLDEN_TOLERANCE },
    };
    const model: ModelVersion = {
      name,
      version,
      sha256,
      sizeBytes: onnx.byteLength,
      blobKey,
      stage: 'candidate',
      contract,
      signed: signManifest(manifest, this.#keys.active),
      createdAt: manifest.issuedAt,
      createdBy: input.actor,
      parentVersion: input.parentVersion ?? null,
      approvedBy: null,
      approvedAt: null,
      stageChangedAt: null,
    };
    try {
      this.#registry.add(model);
    } catch (err) {
      // A concurrent upload of the same version won: remove this one's artifact unless
      // the winner's is the very same object (same sha256, same key).
      if (
        !this.#registry.has(name, version) ||
        this.#registry.get(name, version).blobKey !== blobKey
      ) {
        await this.#blobs.delete(blobKey).catch(() => undefined);
      }
      throw err;
    }
    this.#audit.record(input.actor, 'model.register', `${name}@${version}`, {
      sha256,
      sizeBytes: onnx.byteLength,
      parentVersion: model.parentVersion,
      datasetFingerprint: contract.datasetFingerprint ?? null,
      kind: contract.kind,
    });
    return model;
  }
}
