import * as ort from 'onnxruntime-node';
import { LinesightError } from '@linesight/protocol';
import type { ModelContract } from './model-contract.ts';
import { readModelContract } from './onnx-contract.ts';
import { RunGate } from './run-gate.ts';
import {
  scoreImageWith,
  type ModelOutput,
  type ScoredImage,
  type ScoringModel,
} from './scoring-model.ts';
import {
  checkInputLength,
  checkSessionAgainstContract,
  errorMessage,
  readMap,
  readScore,
} from './session-checks.ts';

/** Options for loading an ONNX model. */
export interface OnnxModelOptions {
  /** Threads one inference may use; 1 (the default) keeps latency steady beside other work. */
  intraOpNumThreads?: number;
}

/**
 * An ONNX Runtime session bound to the Linesight contract inside the model:
 * it knows its input spec, output names and threshold, and checks every output.
 */
export class OnnxModel implements ScoringModel {
  /** The contract read from the model's metadata. */
  readonly contract: ModelContract;
  readonly #session: ort.InferenceSession;
  readonly #inputDims: readonly number[];
  readonly #fetches: string[];
  readonly #runs = new RunGate();

  private constructor(contract: ModelContract, session: ort.InferenceSession) {
    this.contract = contract;
    this.#session = session;
    const { channels, height, width } = contract.inputSpec;
    this.#inputDims = [1, channels, height, width];
    this.#fetches =
      contract.outputs.map === undefined
        ? [contract.outputs.score]
        : [contract.outputs.score, contract.outputs.map];
  }

  /** Reads the contract, creates a session and checks that the graph matches the contract. */
  static async load(onnxBytes: Uint8Array, options: OnnxModelOptions = {}): Promise<OnnxModel> {
    const contract = readModelContract(onnxBytes);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(onnxBytes, {
        intraOpNumThreads: options.intraOpNumThreads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
    } catch (cause) {
      throw new LinesightError(
        'ERR_MODEL_LOAD',
        `ONNX Runtime cannot load the model: ${errorMessage(cause)}`,
        { cause },
      );
    }
    try {
      checkSessionAgainstContract(session, contract);
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err;
    }
    return new OnnxModel(contract, session);
  }

  /** Runs the model on one NCHW float32 input laid out as the contract's input spec says. */
  async run(input: Float32Array): Promise<ModelOutput> {
    this.#runs.checkOpen();
    checkInputLength(this.contract, input);
    return this.#runs.track(this.#runSession(input));
  }

  /** Preprocesses an encoded image as the contract says and scores it, timing both steps. */
  scoreImage(image: Uint8Array): Promise<ScoredImage> {
    return scoreImageWith(this, image);
  }

  /** Waits for in-flight runs, then releases the session; safe to call more than once. */
  close(): Promise<void> {
    return this.#runs.close(() => this.#session.release());
  }

  async #runSession(input: Float32Array): Promise<ModelOutput> {
    const { inputSpec, outputs } = this.contract;
    let results: ort.InferenceSession.ReturnType;
    try {
      const tensor = new ort.Tensor('float32', input, this.#inputDims);
      results = await this.#session.run({ [inputSpec.inputName]: tensor }, this.#fetches);
    } catch (cause) {
      throw new LinesightError('ERR_MODEL_OUTPUT', `inference failed: ${errorMessage(cause)}`, {
        cause,
      });
    }
    const score = readScore(results[outputs.score], outputs.score);
    if (outputs.map === undefined) return { score };
    return { score, map: readMap(results[outputs.map], outputs.map, this.contract.mapScale) };
  }
}
