import { describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { isLinesightError } from '@linesight/protocol';
import { CONTRACT_METADATA_KEY, type ModelContract } from './model-contract.ts';
import { readModelContract, withModelContract } from './onnx-contract.ts';
import { tinyContract, tinyOnnx } from '@linesight/testkit/onnx';
import onnx = onnxProto.onnx;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isLinesightError(err) ? err.code : `not a LinesightError: ${String(err)}`;
  }
  return undefined;
}

const contract: ModelContract = {
  ...tinyContract(16, 8),
  threshold: 1.25,
  training: { seed: 7, samples: 12 },
  datasetFingerprint: 'ab'.repeat(32),
  referenceProfile: { score: { edges: [0, 1, 2], counts: [3, 4] } },
};

describe('model contract in ONNX bytes', () => {
  it('round-trips through withModelContract and readModelContract', () => {
    const bytes = withModelContract(tinyOnnx({ width: 16, height: 8, contract: null }), contract);
    expect(readModelContract(bytes)).toEqual(contract);
    const decoded = onnx.ModelProto.decode(bytes);
    expect(decoded.graph?.node?.length).toBeGreaterThan(0);
    expect(decoded.metadataProps.filter((p) => p.key === CONTRACT_METADATA_KEY)).toHaveLength(1);
  });

  it('replaces an old contract and keeps other metadata and unknown fields', () => {
    const base = onnx.ModelProto.decode(tinyOnnx({ width: 16, height: 8 }));
    base.metadataProps.push({ key: 'author', value: 'line 3' });
    // Field 26 is ModelProto.configuration in newer ONNX; the bundled schema does not know it.
    // Tag (26 << 3) | 2 as a varint, length 2, then a small embedded message.
    const unknownField = Uint8Array.from([0xd2, 0x01, 0x02, 0x08, 0x01]);
    const bytes = Uint8Array.from([...onnx.ModelProto.encode(base).finish(), ...unknownField]);
    const updated = withModelContract(bytes, { ...contract, threshold: 9 });
    expect(readModelContract(updated).threshold).toBe(9);
    const decoded = onnx.ModelProto.decode(updated);
    expect(decoded.metadataProps.map((p) => p.key).sort()).toEqual([
      'author',
      CONTRACT_METADATA_KEY,
    ]);
    expect(Buffer.from(updated).includes(Buffer.from(unknownField))).toBe(true);
    expect(withModelContract(updated, { ...contract, threshold: 9 })).toEqual(updated);
  });

  it('handles a multi-megabyte model quickly', () => {
    const weights = new Float32Array(2_000_000).map((_, i) => i % 97);
    const model = onnx.ModelProto.decode(tinyOnnx({ width: 16, height: 8, contract: null }));
    model.graph?.initializer?.push({
      name: 'big',
      dims: [weights.length],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(weights.buffer),
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    expect(bytes.length).toBeGreaterThan(8_000_000);
    const started = performance.now();
    const withContract = withModelContract(bytes, contract);
    expect(readModelContract(withContract)).toEqual(contract);
    expect(performance.now() - started).toBeLessThan(500);
    expect(withContract.length).toBeGreaterThan(bytes.length);
  });

  it('fails with ERR_MODEL_CONTRACT when the contract is missing, invalid or the bytes are not ONNX', () => {
    expect(
      codeOf(() => readModelContract(tinyOnnx({ width: 16, height: 8, contract: null }))),
    ).toBe('ERR_MODEL_CONTRACT');
    expect(codeOf(() => readModelContract(Buffer.from('not a model at all')))).toBe(
      'ERR_MODEL_CONTRACT',
    );
    expect(codeOf(() => readModelContract(new Uint8Array(0)))).toBe('ERR_MODEL_CONTRACT');
    const model = onnx.ModelProto.decode(tinyOnnx({ width: 16, height: 8, contract: null }));
    model.metadataProps.push({
      key: CONTRACT_METADATA_KEY,
      value: '{"schema":"linesight.model/v1"}',
    });
    expect(codeOf(() => readModelContract(onnx.ModelProto.encode(model).finish()))).toBe(
      'ERR_MODEL_CONTRACT',
    );
    model.metadataProps = [{ key: CONTRACT_METADATA_KEY, value: '{nope' }];
    expect(codeOf(() => readModelContract(onnx.ModelProto.encode(model).finish()))).toBe(
      'ERR_MODEL_CONTRACT',
    );
    const bad = { ...contract, inputSpec: { ...contract.inputSpec, mean: [0, 0] } };
    expect(codeOf(() => withModelContract(tinyOnnx({ width: 16, height: 8 }), bad))).toBe(
      'ERR_MODEL_CONTRACT',
    );
  });
});
