import { OnnxModel, goldenInputs, readModelContract } from '@linesight/vision';
import { LinesightError, sha256Hex, signManifest, type Manifest } from '@linesight/protocol';
import type { KeyRing } from '../signing/key-ring.ts';
import type { BlobStore } from '../blob-store.ts';
import type { ModelRegistry, ModelVersion } from '../registry/model-registry.ts';

// CPU kernels differ slightly across machines (SIMD widths); 1e-3 relative is far below any decision margin.
const GOLDEN_TOLERANCE = 1e-3;
const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** Registers model versions: validates the ONNX file, stores it, signs its manifest. */
export class ModelService {
  readonly #registry: ModelRegistry;
  readonly #blobs: BlobStore;
  readonly #keys: KeyRing;

  constructor(deps: { registry: ModelRegistry; blobs: BlobStore; keys: KeyRing }) {
    this.#registry = deps.registry;
    this.#blobs = deps.blobs;
    this.#keys = deps.keys;
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

  /** Validates, stores and signs a new model version. */
  async register(input: {
    name: string;
    version: string;
    onnx: Uint8Array;
    actor: string;
  }): Promise<ModelVersion> {
    const { name, version, onnx } = input;
    if (!NAME.test(name)) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid model name ${JSON.stringify(name)}: use 1-64 of a-z 0-9 _ . - starting with a letter or digit`,
      );
    }
    if (!SEMVER.test(version)) {
      throw new LinesightError(
        'ERR_CLOUD_BAD_REQUEST',
        `invalid version ${JSON.stringify(version)}: use semantic versioning, e.g. 1.2.0`,
      );
    }
    if (this.#registry.has(name, version)) {
      throw new LinesightError(
        'ERR_CLOUD_CONFLICT',
        `model ${name}@${version} is already registered; versions are immutable, publish a new version`,
      );
    }
    const contract = readModelContract(onnx);
    // Loading proves the file is a model onnxruntime can run with the declared input and outputs;
    // its scores on the standard golden inputs go into the manifest for devices to reproduce.
    const probe = await OnnxModel.load(onnx);
    const goldenScores: number[] = [];
    try {
      for (const input of goldenInputs(contract.inputSpec))
        goldenScores.push((await probe.run(input)).score);
    } finally {
      await probe.close();
    }
    const sha256 = sha256Hex(onnx);
    const blobKey = `models/${name}/${version}/${sha256}.onnx`;
    await this.#blobs.put(blobKey, onnx);
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
    };
    this.#registry.add(model);
    return model;
  }
}
