import { goldenInputs } from './golden-inputs.ts';
import { readModelContract } from './onnx-contract.ts';
import { OnnxModel } from './onnx-model.ts';

/**
 * A model file's scores on the standard golden inputs of its input spec, as the cloud signs
 * them into a manifest and a device must reproduce them. Loads the model, runs each input
 * and closes it; a model that does not load or gives unusable output throws its error.
 */
export async function goldenScoresOf(bytes: Uint8Array): Promise<number[]> {
  const contract = readModelContract(bytes);
  const model = await OnnxModel.load(bytes);
  try {
    const scores: number[] = [];
    for (const input of goldenInputs(contract.inputSpec))
      scores.push((await model.run(input)).score);
    return scores;
  } finally {
    await model.close();
  }
}
